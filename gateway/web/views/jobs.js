// The AI jobs tab: starting a job of each kind the user may run here, following one
// live (its state, progress, streamed output and result) or cancelling it, and the
// user's recent jobs. A job followed has an address (router.js); /jobs/{id} shows one
// on its own.

import * as api from "/assets/api.js";
import { button, field, fill, form, h, select, uid, when, words } from "/assets/dom.js";
import { syncAddress } from "/assets/nav.js";
import { app, attempt, main, once, say, sayError } from "/assets/page.js";
import { canWrite, loadWorldContents, nameOf, renderWorldHeader, renderWorldPanel } from "/assets/views/world.js";
import { JobWatch } from "/assets/watch.js";

const JOB_KINDS = [
  ["analyzeStory", "Analyze a story: find its characters and places"],
  ["describeStory", "Describe a story: write its summary"],
  ["describeWorld", "Describe this world"],
  ["batchAnalyze", "Analyze up to three stories"],
  ["extractEvents", "Extract timeline events"],
  ["paraphrase", "Paraphrase a text"],
];
const FINAL_STATES = ["SUCCEEDED", "FAILED", "CANCELLED"];

/**
 * The kinds of job the user may run in the open world: none without model access;
 * paraphrasing for anyone with it; describing the world for its owner; the others,
 * which write in the world, for those who may write in it.
 */
function allowedKinds() {
  if (!app.me?.gptEnabled) return [];
  const admin = app.me.role === "ADMIN";
  const may = { paraphrase: true, describeWorld: admin || app.role === "OWNER" };
  return JOB_KINDS.filter(([kind]) => may[kind] ?? (admin || canWrite()));
}

export function jobsTab() {
  const kinds = allowedKinds();
  if (app.jobId && app.job?.job.id !== app.jobId) showJob(app.jobId);
  const recent = h("div", { id: "recent-jobs" });
  loadRecentJobs(recent);
  return h(
    "div",
    { class: "jobs" },
    h("h3", {}, "AI jobs"),
    kinds.length
      ? startForm(kinds)
      : h(
          "p",
          { class: "notice" },
          "You do not have model access yet: an administrator can grant it on the Admin page.",
        ),
    h("div", { id: "job-card" }, app.job && app.job.job.id === app.jobId ? app.job.element : null),
    h("h4", {}, "Your recent jobs"),
    recent,
  );
}

function startForm(kinds) {
  const inputs = h("div", { class: "job-inputs" });
  const chosen = kinds.some(([k]) => k === app.jobKind) ? app.jobKind : kinds[0][0];
  const kind = select("kind", kinds, chosen);
  const showInputs = () => {
    app.jobKind = kind.value;
    fill(inputs, jobInputs(kind.value));
  };
  kind.addEventListener("change", showInputs);
  showInputs();
  const reading = kinds.length < JOB_KINDS.length && !canWrite();
  return [
    h("p", { class: "muted" }, "Jobs run in the background; follow their progress here and cancel them at any time."),
    reading ? h("p", { class: "notice" }, "You read this world without writing in it: of the AI jobs, you can paraphrase a text.") : null,
    form(
      { "aria-label": "Start a job", class: "card" },
      (values) => attempt(() => startJob(values)),
      field("Job", kind),
      inputs,
      h("button", { type: "submit" }, "Start job"),
    ),
  ];
}

/** Job `id`, read and followed in the job card. */
async function showJob(id) {
  if (!(await attempt(async () => follow(await api.call("GET", `/v1/jobs/${encodeURIComponent(id)}`)))))
    app.jobId = null;
}

/** One job on a page of its own (/jobs/{id}): its card, followed live. */
export async function renderJob() {
  fill(
    main,
    h(
      "section",
      { class: "job-page", "aria-labelledby": "job-title" },
      h("h2", { id: "job-title", tabindex: "-1" }, "AI job"),
      h("div", { id: "job-card" }, h("p", { class: "muted" }, "Loading the job…")),
    ),
  );
  await showJob(app.jobId);
}

function storyChoice(label, withWorld) {
  const options = app.stories.map((s) => [s.id, s.title]);
  if (withWorld) options.unshift(["", "Every story of this world"]);
  return field(label, select("storyId", options, app.story?.id ?? options[0]?.[0] ?? ""));
}

function jobInputs(kind) {
  const noStories = !app.stories.length && ["analyzeStory", "describeStory", "batchAnalyze"].includes(kind);
  if (noStories) return h("p", { class: "muted" }, "This world has no stories yet.");
  switch (kind) {
    case "analyzeStory":
    case "describeStory":
      return storyChoice("Story");
    case "describeWorld":
      return h("p", { class: "muted" }, `Writes a description of “${app.world.name}” and saves it on the world.`);
    case "batchAnalyze":
      return h(
        "fieldset",
        {},
        h("legend", {}, "Stories to analyze (one to three)"),
        app.stories.map((s) => {
          const id = uid("batch");
          return h(
            "div",
            { class: "check" },
            h("input", { type: "checkbox", id, name: `story:${s.id}`, value: s.id }),
            h("label", { for: id }, s.title),
          );
        }),
      );
    case "extractEvents":
      return h(
        "div",
        {},
        storyChoice("From", true),
        h(
          "div",
          { class: "check" },
          h("input", { type: "checkbox", id: "force", name: "force", value: "true" }),
          h("label", { for: "force" }, "Run again even if the text has not changed"),
        ),
      );
    case "paraphrase":
      return h(
        "div",
        {},
        field("Text to paraphrase", h("textarea", { name: "text", rows: 4, required: true, maxlength: 5000 })),
        field(
          "Style",
          select(
            "mode",
            [
              ["", "Neutral"],
              ["formal", "Formal"],
              ["simpler", "Simpler"],
              ["vivid", "Vivid"],
            ],
            "",
          ),
        ),
      );
    default:
      return null;
  }
}

/** The JobSpec JSON of the form's values. */
function jobSpec(values) {
  const kind = values.kind;
  switch (kind) {
    case "analyzeStory":
    case "describeStory":
      return { [kind]: { storyId: values.storyId } };
    case "describeWorld":
      return { describeWorld: { worldId: app.world.id } };
    case "batchAnalyze": {
      const storyIds = Object.keys(values)
        .filter((k) => k.startsWith("story:"))
        .map((k) => values[k]);
      return { batchAnalyze: { worldId: app.world.id, storyIds } };
    }
    case "extractEvents": {
      const target = values.storyId ? { storyId: values.storyId } : { worldId: app.world.id };
      return { extractEvents: { ...target, force: values.force === "true" } };
    }
    case "paraphrase":
      return { paraphrase: { text: values.text, mode: values.mode } };
    default:
      throw new Error(`unknown job kind ${kind}`);
  }
}

async function startJob(values) {
  const job = await api.call("POST", "/v1/jobs", { body: jobSpec(values), query: once() });
  say(`${kindName(job.spec)} job started.`);
  await follow(job);
  refreshRecentJobs();
}

function refreshRecentJobs() {
  const box = document.getElementById("recent-jobs");
  if (box) loadRecentJobs(box);
}

/** Shows `job` in the job card and, unless it is over, watches it. */
async function follow(job) {
  app.job?.stopWatching();
  app.job = new JobView(job);
  app.jobId = job.id;
  syncAddress();
  fill(document.getElementById("job-card") ?? h("div"), app.job.element);
  if (!FINAL_STATES.includes(job.state)) await app.job.watch();
  else app.job.finished(job);
}

function loadRecentJobs(box) {
  attempt(async () => {
    const page = await api.call("GET", "/v1/jobs", { query: { pageSize: "8" } });
    const jobs = page?.jobs ?? [];
    fill(
      box,
      jobs.length
        ? h(
            "ul",
            { class: "plain recent" },
            jobs.map((job) =>
              h(
                "li",
                {},
                h("span", { class: `badge state-${job.state}` }, words(job.state)),
                ` ${kindName(job.spec)} · ${when(job.createTime)} `,
                button("Show", () => attempt(async () => follow(await api.call("GET", `/v1/jobs/${job.id}`))), {
                  class: "quiet",
                  "aria-label": `Show the ${kindName(job.spec)} job of ${when(job.createTime)}`,
                }),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No jobs yet."),
    );
  });
}

function kindName(spec) {
  const kind = Object.keys(spec ?? {})[0] ?? "";
  const names = {
    describeWorld: "DescribeWorld",
    describeStory: "DescribeStory",
    analyzeStory: "AnalyzeStory",
    batchAnalyze: "BatchAnalyze",
    extractEvents: "ExtractEvents",
    paraphrase: "Paraphrase",
  };
  return names[kind] ?? "Job";
}

/** One job on screen: its state, progress, streamed output, result, and a Cancel button. */
class JobView {
  constructor(job) {
    this.job = job;
    this.watcher = null;
    const progressId = uid("progress");
    this.badge = h("span", { class: "badge" });
    this.bar = h("progress", { id: progressId, max: "100", value: "0" });
    this.message = h("p", { class: "progress-message" });
    this.log = h("ol", { class: "progress-log", "aria-label": "Progress updates" });
    this.output = h("pre", { class: "output", "aria-label": "Model output", tabindex: "0" });
    this.result = h("div", { class: "result", "aria-live": "polite" });
    this.cancel = button("Cancel job", () => this.cancelJob(), { class: "danger" });
    this.element = h(
      "section",
      { class: "card job", "aria-label": `${kindName(job.spec)} job`, "data-job-id": job.id },
      h("h4", {}, `${kindName(job.spec)} job `, this.badge),
      h("div", { class: "progress-row" }, h("label", { for: progressId }, "Progress"), this.bar),
      this.message,
      this.log,
      h("details", { open: true }, h("summary", {}, "Model output, as it is written"), this.output),
      this.result,
      this.cancel,
    );
    this.setState(job.state);
    if (job.progress) this.progress(job.progress, false);
    this.output.textContent = job.output ?? "";
  }

  setState(state) {
    this.state = state ?? "QUEUED";
    this.badge.textContent = words(this.state);
    this.badge.className = `badge state-${this.state}`;
    this.element.dataset.state = this.state;
    this.cancel.hidden = FINAL_STATES.includes(this.state);
  }

  progress(progress, logged = true) {
    const percent = Number(progress.percent ?? 0);
    this.bar.value = percent;
    this.bar.textContent = `${percent}%`;
    this.message.textContent = `${percent}% — ${progress.message ?? ""}`;
    if (logged) this.log.append(h("li", {}, `${percent}% — ${progress.message ?? ""}`));
  }

  async watch() {
    this.watcher = new JobWatch(this.job.id, {
      onUpdate: (update) => this.apply(update),
      onFailure: (error) => {
        sayError(error);
        this.message.textContent = "No longer following this job's progress.";
      },
    });
    await this.watcher.start();
  }

  stopWatching() {
    this.watcher?.stop();
  }

  apply(update) {
    if (update.state) {
      this.setState(update.state);
      // A new attempt writes its output again from the start.
      if (update.state === "RUNNING") this.output.textContent = "";
    } else if (update.progress) {
      this.progress(update.progress);
    } else if (update.outputDelta) {
      this.output.textContent += update.outputDelta;
      this.output.scrollTop = this.output.scrollHeight;
    } else if (update.finished) {
      this.finished(update.finished);
    }
  }

  async finished(job) {
    this.job = job;
    this.setState(job.state);
    refreshRecentJobs();
    if (job.progress) {
      this.bar.value = Number(job.progress.percent ?? 0);
      this.message.textContent = `${job.progress.percent ?? 0}% — ${job.progress.message ?? ""}`;
    }
    if (job.output !== undefined) this.output.textContent = job.output;
    if (job.state === "FAILED") {
      fill(
        this.result,
        h(
          "p",
          { class: "error" },
          `Failed: ${job.error?.message ?? "no reason given"}${job.error?.code ? ` (${job.error.code})` : ""}`,
        ),
      );
      return;
    }
    if (job.state === "CANCELLED") {
      fill(this.result, h("p", {}, "Cancelled: nothing more will be written for this job."));
      return;
    }
    // What the job wrote shows up in the world: read it again, then describe the result.
    if (app.world) {
      await attempt(loadWorldContents);
      if (app.story && !app.dirty)
        await attempt(async () => (app.story = await api.call("GET", `/v1/stories/${app.story.id}`)));
    }
    fill(this.result, resultView(job.result ?? {}));
    // Show what changed, but never redraw an editor holding unsaved text or being typed in.
    const typing = app.dirty || Boolean(document.activeElement?.closest("#story-form"));
    if (app.tab !== "jobs" && !(app.tab === "stories" && typing)) renderWorldPanel();
    else renderWorldHeader();
  }

  async cancelJob() {
    await attempt(async () => {
      const job = await api.call("POST", `/v1/jobs/${this.job.id}/cancel`, { body: {} });
      say(`Asked to cancel the ${kindName(job.spec)} job.`);
      if (FINAL_STATES.includes(job.state)) {
        this.stopWatching();
        this.finished(job);
      }
    });
  }
}

function resultView(result) {
  const parts = [h("p", { class: "meta" }, `Written by the ${result.model ?? "unknown"} model.`)];
  if (result.description) {
    parts.push(h("p", {}, result.description.text ?? ""));
    parts.push(
      h("p", { class: "meta" }, result.description.applied ? "Saved." : "Not saved: someone edited it meanwhile."),
    );
  }
  for (const story of result.analyses?.stories ?? []) {
    const title = app.stories.find((s) => s.id === story.storyId)?.title ?? "the story";
    const names = (ids, list) => (ids ?? []).map((id) => nameOf(list, id));
    parts.push(
      h(
        "div",
        { class: "analysis" },
        h("h5", {}, `Found in “${title}”`),
        h(
          "p",
          {},
          h("strong", {}, "Characters and things: "),
          names(story.linkedEntityIds, app.entities).join(", ") || "none",
        ),
        h("p", {}, h("strong", {}, "Places: "), names(story.linkedLocationIds, app.locations).join(", ") || "none"),
        h(
          "p",
          { class: "meta" },
          `${(story.createdEntityIds ?? []).length} entities and ${(story.createdLocationIds ?? []).length} places were new.`,
        ),
      ),
    );
  }
  if (result.events) {
    const created = result.events.createdEventIds?.length ?? 0;
    const cached = result.events.cachedStoryIds?.length ?? 0;
    parts.push(
      h(
        "p",
        {},
        `${created} events added to the timeline${cached ? `; ${cached} stories had not changed since the last extraction` : ""}.`,
      ),
    );
  }
  if (result.suggestions) {
    parts.push(
      h(
        "ol",
        { class: "suggestions" },
        (result.suggestions.suggestions ?? []).map((s) => h("li", {}, s)),
      ),
    );
  }
  return parts;
}
