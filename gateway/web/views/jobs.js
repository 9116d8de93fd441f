// The AI jobs tab: starting a job of each kind the user may run here, following one
// live (its state, progress, the model's answer as it is written, and the result) or
// cancelling it, and the user's recent jobs. A job followed has an address
// (router.js); /jobs/{id} shows one on its own. Everything is said as a writer would
// read it: the model's JSON answers as lines of text, failures as sentences
// (messages.js), and a paraphrase can be copied or put into a story.

import * as api from "/assets/api.js";
import { button, charactersLeft, field, fill, form, h, select, uid, when, words } from "/assets/dom.js";
import { explain, sentence } from "/assets/messages.js";
import { syncAddress } from "/assets/nav.js";
import { app, attempt, main, once, say, sayError } from "/assets/page.js";
import { openStory } from "/assets/views/story.js";
import {
  canWrite,
  loadWorldContents,
  nameOf,
  renderWorldHeader,
  renderWorldPanel,
  switchTab,
} from "/assets/views/world.js";
import { openProposals, reviewView, undoJob } from "/assets/views/review.js";
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
/** What each kind of job is called on the page. */
const KIND_NAMES = {
  describeWorld: "World description",
  describeStory: "Story summary",
  analyzeStory: "Story analysis",
  batchAnalyze: "Analysis of several stories",
  extractEvents: "Timeline extraction",
  paraphrase: "Paraphrase",
};
/** The longest text a paraphrase job takes (the contract's limit). */
const PARAPHRASE_LIMIT = 5000;

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
    canWrite() ? [h("h4", {}, "Waiting for your review"), openProposals(showJob)] : null,
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
    reading
      ? h(
          "p",
          { class: "notice" },
          "You read this world without writing in it: of the AI jobs, you can paraphrase a text.",
        )
      : null,
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
        paraphraseText(),
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

/** The text to paraphrase, with what is left of its limit. */
function paraphraseText() {
  const text = h("textarea", { name: "text", rows: 4, required: true });
  return field("Text to paraphrase", text, charactersLeft(text, PARAPHRASE_LIMIT));
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
  const body = jobSpec(values);
  const job = await api.call("POST", "/v1/jobs", { body, query: once() });
  say(`${kindName(job.spec)} started.`);
  await follow(job);
  refreshRecentJobs();
}

function refreshRecentJobs() {
  const box = document.getElementById("recent-jobs");
  if (box) loadRecentJobs(box);
  refreshProposals();
}

/** The list of open proposals read again, where the jobs tab shows it. */
function refreshProposals() {
  document.getElementById("open-proposals")?.replaceWith(openProposals(showJob));
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
  return KIND_NAMES[Object.keys(spec ?? {})[0]] ?? "AI job";
}

/**
 * The model's answer as a writer reads it. Prose stays as it is; of a JSON answer
 * (analyses, events, rewordings) each object's values make one line and each string
 * of a list its own, keys and punctuation left out, an unfinished string included, so
 * it reads as it streams in.
 */
export function readable(text) {
  // A JSON object or list, not prose that starts with a bracket ("[offline] …").
  if (!/^\s*(\{|\[\s*($|[[{"\]\d-]))/.test(text)) return text;
  const lines = [];
  const open = [];
  let values = [];
  const endLine = () => {
    if (values.length) lines.push(values.join(" — "));
    values = [];
  };
  const value = (v) => (open.at(-1) === "[" ? (endLine(), lines.push(v)) : values.push(v));
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const body = text.slice(i + 1, Math.min(end, text.length));
      const after = text.slice(end + 1).trimStart();
      if (!(end < text.length && after.startsWith(":"))) value(unquote(body));
      i = end + 1;
    } else if (c === "{" || c === "[") {
      open.push(c);
      i += 1;
    } else if (c === "}" || c === "]") {
      if (c === "}") endLine();
      open.pop();
      i += 1;
    } else {
      const number = /^-?\d+(\.\d+)?/.exec(text.slice(i, i + 32));
      if (number && !/[\w.]/.test(text[i - 1] ?? "")) value(number[0]);
      i += number ? number[0].length : 1;
    }
  }
  endLine();
  return lines.join("\n");
}

/** A JSON string's body as text, even cut off in the middle of an escape. */
function unquote(body) {
  try {
    return JSON.parse(`"${body.replace(/\\$/, "")}"`);
  } catch {
    return body;
  }
}

/** One job on screen: its state, progress, streamed output, result, and a Cancel button. */
class JobView {
  constructor(job) {
    this.job = job;
    this.watcher = null;
    const progressId = uid("progress");
    this.badge = h("span", { class: "badge" });
    this.bar = h("progress", { id: progressId, max: "100", value: "0" });
    // Announced as it changes: a screen reader hears how the job goes.
    this.message = h("p", { class: "progress-message", role: "status" });
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
      h("details", { open: true }, h("summary", {}, "The model's answer, as it is written"), this.output),
      this.result,
      this.cancel,
    );
    this.setState(job.state);
    if (job.progress) this.progress(job.progress, false);
    this.showOutput(job.output ?? "");
  }

  /** Shows the model's answer so far (`text`, as the model wrote it) as a writer reads it. */
  showOutput(text) {
    this.written = text;
    this.output.textContent = readable(text);
    this.output.scrollTop = this.output.scrollHeight;
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
    const line = `${percent}% — ${sentence(progress.message)}`;
    this.bar.value = percent;
    this.bar.textContent = `${percent}%`;
    // Progress that only moves with the model's text keeps its line.
    if (logged && line !== this.message.textContent && progress.message !== this.lastMessage) {
      this.log.append(h("li", {}, line));
    }
    this.lastMessage = progress.message;
    this.message.textContent = line;
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
      if (update.state === "RUNNING") this.showOutput("");
    } else if (update.progress) {
      this.progress(update.progress);
    } else if (update.outputDelta) {
      this.showOutput(this.written + update.outputDelta);
    } else if (update.finished) {
      this.finished(update.finished);
    }
  }

  async finished(job) {
    this.job = job;
    this.setState(job.state);
    refreshRecentJobs();
    if (job.progress) this.progress(job.progress, false);
    if (job.output !== undefined) this.showOutput(job.output);
    if (job.state === "FAILED") {
      const why = explain({ reason: job.error?.code, message: job.error?.message || "no reason was given" });
      fill(this.result, h("p", { class: "error" }, `It failed. ${why}`));
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
    fill(this.result, resultView(job.result ?? {}), this.review(job));
    // Show what changed, but never redraw an editor holding unsaved text or being typed in.
    const typing = app.dirty || Boolean(document.activeElement?.closest("#story-form"));
    if (app.tab !== "jobs" && !(app.tab === "stories" && typing)) renderWorldPanel();
    else renderWorldHeader();
  }

  /**
   * The review of the job's proposal, and, once it is accepted, a way to undo the job;
   * nothing for a job with no proposal.
   */
  review(job) {
    const id = job.result?.proposalId;
    if (!id) return null;
    const undo = h("div", { class: "row actions" });
    const onRead = (proposal) => {
      const mine = job.ownerId === app.me?.id || app.me?.role === "ADMIN";
      if (proposal.state !== "PROPOSAL_OPEN") refreshProposals();
      const accepted = proposal.state === "PROPOSAL_ACCEPTED" && mine;
      fill(undo, accepted ? button("Undo this job", () => this.undo(undo), { class: "danger" }) : null);
    };
    return [reviewView(id, onRead), undo];
  }

  async undo(box) {
    await undoJob(this.job.id);
    fill(box, h("p", { class: "meta" }, "This job was undone."));
    renderWorldHeader();
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
  const parts = [h("p", { class: "meta" }, `Written by the ${result.model ?? "unnamed"} model.`)];
  // What a job proposes is shown in its review, change by change.
  if (result.proposalId) return parts;
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
    parts.push(h("ol", { class: "suggestions" }, (result.suggestions.suggestions ?? []).map(suggestionView)));
  }
  return parts;
}

/** One rewording, with a way to copy it and one to put it into a story. */
function suggestionView(text, index) {
  const number = index + 1;
  const stories = app.stories.map((s) => [s.id, s.title]);
  const story = select("storyId", stories, app.story?.id ?? stories[0]?.[0] ?? "");
  story.setAttribute("aria-label", `Story to put rewording ${number} into`);
  return h(
    "li",
    {},
    h("p", {}, text),
    h(
      "div",
      { class: "row actions" },
      button("Copy", () => copy(text), { class: "secondary", "aria-label": `Copy rewording ${number}` }),
      stories.length
        ? [
            story,
            button("Put into the story", () => putIntoStory(story.value, text), {
              class: "secondary",
              "aria-label": `Put rewording ${number} into the chosen story`,
            }),
          ]
        : null,
    ),
  );
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    say("Copied: paste it wherever you like.");
  } catch {
    say("This browser did not let the page copy. Select the text and copy it yourself.", "error");
  }
}

/**
 * Opens story `storyId` in the editor with `text` in it: in place of the passage it
 * rewords when the story holds that passage, else at the end. It is typed, not saved:
 * the editor keeps it as a draft and saves it after a pause, and Undo takes it back.
 */
async function putIntoStory(storyId, text) {
  // What the job paraphrased, as its spec holds it (the form may hold other text by now).
  const original = app.job?.job.spec?.paraphrase?.text;
  await switchTab("stories");
  await openStory(storyId);
  const area = document.getElementById("story-content");
  if (!area || area.readOnly) return;
  const at = original ? area.value.indexOf(original) : -1;
  const [start, end] = at >= 0 ? [at, at + original.length] : [area.value.length, area.value.length];
  const insert = at >= 0 || !area.value ? text : `${area.value.endsWith("\n") ? "\n" : "\n\n"}${text}`;
  area.focus();
  area.setSelectionRange(start, end);
  // insertText keeps the browser's undo history and sends the input event the editor saves on.
  if (!document.execCommand("insertText", false, insert)) {
    area.setRangeText(insert, start, end, "end");
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }
  say(
    at >= 0
      ? "The rewording replaced its passage: not saved yet."
      : "The rewording was added at the end: not saved yet.",
  );
}
