// Reviewing what the AI co-writer proposes: each change of a proposal side by side
// (what the world holds now, what the job proposes), a box to keep it, its proposed
// name or text editable, then Accept chosen or Reject all. A decided proposal reads
// as it was decided, each change with its state. The jobs tab lists the world's open
// proposals; each is reviewed in its job's card (views/jobs.js).

import * as api from "/assets/api.js";
import { button, fill, h, uid, when, words } from "/assets/dom.js";
import { app, attempt, say, sayError } from "/assets/page.js";
import { loadWorldContents, nameOf, renderWorldHeader } from "/assets/views/world.js";

/** How each change's state reads. */
const CHANGE_STATES = { CHANGE_PENDING: "Pending", CHANGE_APPLIED: "Accepted", CHANGE_DECLINED: "Declined" };
const PROPOSAL_STATES = {
  PROPOSAL_OPEN: "Open",
  PROPOSAL_ACCEPTED: "Accepted",
  PROPOSAL_REJECTED: "Rejected",
  PROPOSAL_EXPIRED: "Expired",
};

/**
 * Proposal `id` to review, in an element that redraws itself; `onRead(proposal)` runs
 * each time it is read, and once it is accepted or rejected.
 */
export function reviewView(id, onRead = () => {}) {
  const box = h("section", { class: "review", "aria-label": "Proposed changes" });
  // `kept`: the writer's choices to show again (see `accept`), by change id.
  const redraw = async (kept = {}, read = null) => {
    const proposal = read ?? (await api.call("GET", `/v1/proposals/${encodeURIComponent(id)}`));
    fill(box, proposalView(proposal, kept, redraw));
    onRead(proposal);
    // After a decision the buttons are gone: the focus goes to the proposal's heading.
    if (read) box.querySelector("h5")?.focus();
  };
  fill(box, h("p", { class: "muted" }, "Loading the proposed changes…"));
  attempt(() => redraw());
  return box;
}

function proposalView(proposal, kept, redraw) {
  const open = proposal.state === "PROPOSAL_OPEN";
  const rows = (proposal.changes ?? []).map((change) => changeView(change, proposal, open, kept[change.id]));
  const state = PROPOSAL_STATES[proposal.state] ?? words(proposal.state);
  return [
    h("h5", { tabindex: "-1" }, `${proposal.title} `, h("span", { class: `badge proposal-${proposal.state}` }, state)),
    open
      ? h("p", { class: "muted" }, `Nothing is changed until you accept. Open until ${when(proposal.expireTime)}.`)
      : h("p", { class: "meta" }, `Decided ${when(proposal.decideTime) || "already"}: it can no longer change.`),
    h(
      "ul",
      { class: "plain changes" },
      rows.map((row) => row.element),
    ),
    open
      ? h(
          "div",
          { class: "row actions" },
          button("Accept chosen", () => accept(proposal, rows, redraw)),
          button("Reject all", () => reject(proposal, redraw), { class: "secondary" }),
        )
      : null,
  ];
}

/** What a change does, in a few words (`Add the character “Mira Vale”`). */
export function changeSummary(change, proposal) {
  if (change.createEntity) return `Add the character or thing “${change.createEntity.name}”`;
  if (change.createLocation) return `Add the place “${change.createLocation.name}”`;
  if (change.createEvent) return `Add the event “${change.createEvent.title}”`;
  if (change.link) {
    const story = app.stories.find((s) => s.id === change.link.storyId)?.title ?? "the story";
    return `Link “${itemName(change.link, proposal)}” to “${story}”`;
  }
  const set = change.setField ?? {};
  return `Change the ${words(set.field).toLowerCase()} of the ${words(set.resourceKind).toLowerCase() || "item"}`;
}

/** The name of the entity or location a link names: one of the world's, or one the proposal adds. */
function itemName({ entityId, locationId }, proposal) {
  const made = (proposal.changes ?? []).map((c) => c.createEntity ?? c.createLocation).filter(Boolean);
  const found = made.find((item) => item.id === (entityId ?? locationId));
  return found?.name ?? nameOf(entityId ? app.entities : app.locations, entityId ?? locationId);
}

/** One change: its box, what is there now, what is proposed (editable while open), as the writer left it (`kept`). */
function changeView(change, proposal, open, kept = {}) {
  const pending = open && change.state === "CHANGE_PENDING";
  const summary = changeSummary(change, proposal);
  const boxId = uid("change");
  const isStale = Boolean(kept.stale);
  const chosen = pending ? h("input", { type: "checkbox", id: boxId, checked: kept.chosen ?? true }) : null;
  const edit = pending ? editorOf(change, summary) : null;
  if (edit && kept.typed !== undefined) edit.control.value = kept.typed;
  const element = h(
    "li",
    { class: `change card${isStale ? " stale" : ""}`, "data-change-id": change.id },
    h(
      "div",
      { class: "check" },
      chosen,
      h(pending ? "label" : "p", pending ? { for: boxId } : {}, summary),
      pending ? null : h("span", { class: `badge change-${change.state}` }, CHANGE_STATES[change.state] ?? ""),
    ),
    isStale ? h("p", { class: "error" }, "Changed since it was proposed: leave it out, or reject the proposal.") : null,
    change.reason ? h("p", { class: "meta" }, change.reason) : null,
    h(
      "div",
      { class: "side-by-side" },
      h("div", {}, h("h6", {}, "Now"), h("p", {}, currentOf(change))),
      h("div", {}, h("h6", {}, "Proposed"), edit?.control ?? h("p", {}, proposedOf(change))),
    ),
  );
  return { change, summary, element, chosen: () => chosen?.checked, edit: () => edit?.value(), editor: edit };
}

function currentOf(change) {
  if (change.setField) return change.setField.currentValue || "(empty)";
  if (change.link) return "Not linked";
  return "Nothing yet: it is new";
}

function proposedOf(change) {
  const item = change.createEntity ?? change.createLocation;
  if (item)
    return [
      item.name,
      item.entityType ? ` (${item.entityType})` : "",
      item.description ? ` — ${item.description}` : "",
    ];
  if (change.createEvent) {
    const event = change.createEvent;
    return [event.title, event.year ? `, year ${event.year}` : "", event.description ? ` — ${event.description}` : ""];
  }
  if (change.link) return "Linked";
  return change.setField?.proposedValue ?? "";
}

/**
 * The control that edits a change's proposed name (a create) or text (a field), and
 * the ChangeEdit it makes when changed (undefined when left as proposed).
 */
function editorOf(change, summary) {
  const item = change.createEntity ?? change.createLocation ?? change.createEvent;
  if (!item && !change.setField) return null;
  const key = change.createEvent ? "title" : "name";
  const original = item ? item[key] : (change.setField.proposedValue ?? "");
  const control = item
    ? h("input", { type: "text", value: original, required: true })
    : h("textarea", { rows: 4, value: original });
  control.setAttribute("aria-label", `Proposed ${item ? key : "text"}: ${summary}`);
  const value = () => {
    if (control.value === original) return undefined;
    if (!item) return { changeId: change.id, text: control.value };
    const kind = change.createEntity ? "entity" : change.createLocation ? "location" : "event";
    return { changeId: change.id, [kind]: { ...item, [key]: control.value.trim() } };
  };
  return { control, value };
}

async function accept(proposal, rows, redraw) {
  const chosen = rows.filter((row) => row.chosen());
  if (!chosen.length) return say("Choose at least one change to accept, or reject them all.", "error");
  const body = {
    changeIds: chosen.map((row) => row.change.id),
    edits: chosen.map((row) => row.edit()).filter(Boolean),
    etag: proposal.etag,
  };
  try {
    const decided = await api.call("POST", `/v1/proposals/${proposal.id}/accept`, { body });
    const applied = (decided.changes ?? []).filter((c) => c.state === "CHANGE_APPLIED").length;
    say(`Accepted: ${applied === 1 ? "1 change" : `${applied} changes`} made in the world.`);
    await decidedNow(decided, redraw);
  } catch (error) {
    if (error?.reason !== "PROPOSAL_STALE") return sayError(error);
    const stale = String(error.metadata?.stale_change_ids ?? "")
      .split(",")
      .filter(Boolean);
    const names = rows.filter((row) => stale.includes(row.change.id)).map((row) => lowerFirst(row.summary));
    say(`${error.describe()} Changed since: ${names.join("; ") || "some of the chosen changes"}.`, "error");
    // Shown again as the writer left it, the stale changes marked and left out.
    const kept = rows.map((row) => {
      const isStale = stale.includes(row.change.id);
      return [row.change.id, { stale: isStale, chosen: row.chosen() && !isStale, typed: row.editor?.control.value }];
    });
    await attempt(() => redraw(Object.fromEntries(kept)));
  }
}

const lowerFirst = (text) => text.charAt(0).toLowerCase() + text.slice(1);

async function reject(proposal, redraw) {
  await attempt(async () => {
    const decided = await api.call("POST", `/v1/proposals/${proposal.id}/reject`, { body: { etag: proposal.etag } });
    say("The proposal was rejected: nothing was changed.");
    await decidedNow(decided, redraw);
  });
}

/** After a decision: the world read again, and the proposal shown as decided. */
async function decidedNow(proposal, redraw) {
  if (app.world) await attempt(loadWorldContents);
  // The story open in the editor may have new links (and a new etag): read it again, unless typed in.
  if (app.story && !app.dirty)
    await attempt(async () => (app.story = await api.call("GET", `/v1/stories/${app.story.id}`)));
  renderWorldHeader();
  await redraw({}, proposal);
}

/** The open proposals of the open world, each with a link to review it in its job. */
export function openProposals(review) {
  const box = h("div", { id: "open-proposals" });
  attempt(async () => {
    const query = { state: "PROPOSAL_OPEN", pageSize: "20" };
    const page = await api.call("GET", `/v1/worlds/${app.world.id}/proposals`, { query });
    const proposals = page?.proposals ?? [];
    fill(
      box,
      proposals.length
        ? h(
            "ul",
            { class: "plain recent" },
            proposals.map((p) =>
              h(
                "li",
                {},
                `${p.title} · ${p.changes?.length ?? 0} changes · ${when(p.createTime)} `,
                button("Review", () => review(p.jobId), { class: "quiet", "aria-label": `Review ${p.title}` }),
              ),
            ),
          )
        : h("p", { class: "muted" }, "Nothing waits for your review."),
    );
  });
  return box;
}

/** Undoes job `jobId` (the changes its accepted proposal made), saying what was left as it was. */
export async function undoJob(jobId) {
  await attempt(async () => {
    const answer = await api.call("POST", `/v1/jobs/${encodeURIComponent(jobId)}/undo`, { body: {} });
    const undone = answer?.undone?.length ?? 0;
    const skipped = answer?.skipped ?? [];
    const reasons = {
      CHANGED_SINCE: "someone changed it since",
      NOT_WRITABLE: "you may no longer change it",
      WORLD_DELETED: "its world is gone",
    };
    const left = skipped.map((s) => `${skippedName(s)} (${reasons[s.reason] ?? s.reason})`);
    say(
      `Undone: ${undone === 1 ? "1 item" : `${undone} items`} put back.` +
        (left.length ? ` Left as they are: ${left.join("; ")}.` : " Nothing was skipped."),
    );
    if (app.world) await attempt(loadWorldContents);
  });
}

/** A skipped resource as the writer knows it: its name where the page has it. */
function skippedName({ resourceKind, resourceId }) {
  const list = { ENTITY: app.entities, LOCATION: app.locations }[resourceKind];
  const name = list?.find((item) => item.id === resourceId)?.name;
  return name ? `“${name}”` : `a ${words(resourceKind).toLowerCase()}`;
}
