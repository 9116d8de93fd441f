// One world, open in its panel: its heading and tabs, reading it (again) and what the
// page does when the reader's access changes meanwhile, and the settings and sharing
// tab. The stories tab is views/story.js, the characters, places and timeline tabs
// views/items.js, the AI jobs tab views/jobs.js. What is typed in the settings is
// kept in the browser until it is saved (drafts.js).

import * as api from "/assets/api.js";
import { button, field, fill, form, h, select, table, when, words } from "/assets/dom.js";
import { dropDraft, keepDraft, readDraft, restore } from "/assets/drafts.js";
import { show, syncAddress } from "/assets/nav.js";
import { app, attempt, capitalized, onAccessError, say, sayError } from "/assets/page.js";
import { worldInvitations } from "/assets/views/invitations.js";
import { entitiesTab, placesTab, timelineTab } from "/assets/views/items.js";
import { jobsTab } from "/assets/views/jobs.js";
import { leaveStory, storiesTab } from "/assets/views/story.js";
import { VISIBILITIES, WORLD_TYPES, loadWorlds, renderWorldList, renderWorlds } from "/assets/views/worlds.js";

const ROLE_NAMES = { OWNER: "owner", CO_AUTHOR: "co-author", READER: "reader", VIEWER: "reader" };
/** How much each role may do, to tell when access was withdrawn. */
const ROLE_RANK = { OWNER: 3, CO_AUTHOR: 2, READER: 1, VIEWER: 1 };
const SHARE_ROLES = [
  ["READER", "Reader (reads everything)"],
  ["CO_AUTHOR", "Co-author (also writes stories, entities, places, events)"],
];

const TABS = [
  ["stories", "Stories"],
  ["entities", "Characters & things"],
  ["places", "Places"],
  ["timeline", "Timeline"],
  ["jobs", "AI jobs"],
  ["settings", "Settings & sharing"],
];
/** The tabs of a visitor who is not signed in. */
const READING_TABS = ["stories", "entities", "places", "timeline"];

/**
 * Counts the openings of a world or a tab: one that a newer one overtook while it
 * read (a tab clicked while the world still opens, Back pressed twice) draws nothing.
 */
let navigation = 0;

/**
 * Opens world `id`, read again, at `place`: a tab (the stories by default) and what is
 * open in it (a story, character, place, event or job id). False when it cannot be
 * read: the page says why and shows the worlds instead.
 */
export async function openWorld(id, { tab = "stories", itemId = null } = {}) {
  const turn = ++navigation;
  if (!(await leaveStory())) return false;
  let contents;
  try {
    contents = await readWorld(id);
  } catch (error) {
    if (turn === navigation) await unreadable(error, id);
    return false;
  }
  if (turn !== navigation) return false;
  Object.assign(app, contents, { tab, story: null, dirty: false, itemId: null });
  if (tab === "jobs") app.jobId = itemId;
  else if (tab !== "stories") app.itemId = itemId;
  if (tab === "stories" && itemId) await openStoryOf(itemId);
  if (tab === "jobs") await attempt(async () => (app.me = await api.call("GET", "/v1/users/me")));
  if (turn !== navigation) return false;
  await showWorld();
  // What the address names, when it names more than the world: on a phone it is far down.
  const heading = ["editor-title", "item-title", "world-title"].map((h) => document.getElementById(h)).find(Boolean);
  heading?.focus();
  return true;
}

/** Reads story `id` into the editor, or says plainly that it is not there. */
async function openStoryOf(id) {
  try {
    app.story = await api.call("GET", `/v1/stories/${id}`);
  } catch (error) {
    if (error instanceof api.ApiError && error.status === "NOT_FOUND")
      say("That story cannot be found: it was deleted, or is not shared with you.", "error");
    else sayError(error);
  }
}

/** The worlds view with the open world: drawn whole, or only its list and panel when it is shown. */
async function showWorld() {
  if (app.view === "worlds" && document.getElementById("world-panel")) {
    renderWorldList();
    renderWorldPanel();
    return;
  }
  await show("worlds");
}

/** No world open any more (the worlds list, the admin page, a job on its own). */
export function closeWorld() {
  Object.assign(app, { world: null, story: null, dirty: false, itemId: null, tab: "stories", role: null });
}

/**
 * World `id` could not be read: said plainly. Not found is a world deleted or not
 * shared (any more); a visitor who is not signed in is asked to, and comes back here.
 */
async function unreadable(error, id) {
  const missing = error instanceof api.ApiError && ["NOT_FOUND", "PERMISSION_DENIED"].includes(error.status);
  const name = app.world?.id === id ? app.world.name : null;
  if (!missing) sayError(error);
  else if (!app.me) say("This world is not public: log in to open it, if it is shared with you.", "error");
  else if (name) say(`You can no longer open “${name}”: it was deleted, or is no longer shared with you.`, "error");
  else say("This world cannot be found: it was deleted, or is not shared with you.", "error");
  if (!missing && app.world?.id === id) return;
  closeWorld();
  await show("worlds");
}

/** Reads world `id` (the open one by default) into the page: see `readWorld`. */
export async function loadWorldContents(id = app.world.id) {
  Object.assign(app, await readWorld(id));
}

/** World `id` with its stories, entities, places, events (in the timeline's order) and shares, and the caller's role in it. */
async function readWorld(id) {
  const [world, stories, entities, locations, timeline, shares] = await Promise.all([
    api.call("GET", `/v1/worlds/${id}`),
    api.listAll(`/v1/worlds/${id}/stories`, "stories"),
    api.listAll(`/v1/worlds/${id}/entities`, "entities"),
    api.listAll(`/v1/worlds/${id}/locations`, "locations"),
    api.call("GET", `/v1/worlds/${id}/timeline`),
    api.call("GET", `/v1/worlds/${id}/shares`).then(
      (r) => r?.shares ?? [],
      () => [],
    ),
  ]);
  const events = (timeline?.eras ?? []).flatMap((era) => era.events ?? []);
  const share = shares.find((s) => s.userId === app.me?.id);
  const role = app.me && world.ownerId === app.me.id ? "OWNER" : (share?.role ?? "VIEWER");
  return { world, stories, entities, locations, events, shares, role };
}

/**
 * Reads the open world again after a call was refused or not found: when the world
 * cannot be read any more, or the caller's role went down, the page says so plainly
 * and shows what they may still do. True when access changed.
 */
export async function recheckAccess() {
  const world = app.world;
  if (!world) return false;
  const before = app.role;
  let contents;
  try {
    contents = await readWorld(world.id);
  } catch (error) {
    if (app.world?.id !== world.id) return false;
    await unreadable(error, world.id);
    return app.world?.id !== world.id;
  }
  // Another world may have opened meanwhile: what was read is then no longer shown.
  if (app.world?.id !== world.id) return false;
  Object.assign(app, contents);
  if (ROLE_RANK[app.role] >= ROLE_RANK[before]) return false;
  say(
    `You can now only read “${app.world.name}”: its owner made you a reader. What you typed stays in this browser.`,
    "error",
  );
  app.dirty = false;
  renderWorldPanel();
  return true;
}

onAccessError(recheckAccess);

// A page left open in a background tab checks its access again when it comes back.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && app.world && !app.dirty) recheckAccess();
});

export function canWrite() {
  return app.role === "OWNER" || app.role === "CO_AUTHOR";
}

/** The name of the item `id` of `list` (an entity or a place), or "(removed)". */
export const nameOf = (list, id) => list.find((item) => item.id === id)?.name ?? "(removed)";

export function renderWorldPanel() {
  const panel = document.getElementById("world-panel");
  if (!panel) return;
  syncAddress();
  const world = app.world;
  if (!world) {
    fill(
      panel,
      h(
        "div",
        { class: "empty" },
        h("h2", {}, "Choose a world"),
        h("p", { class: "muted" }, "Pick a world on the left, or create one, to write its stories."),
      ),
    );
    return;
  }
  const shown = TABS.filter(([key]) => app.me || READING_TABS.includes(key));
  const tabs = shown.map(([key, text]) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `tab-${key}`,
        "aria-selected": String(app.tab === key),
        "aria-controls": "tab-panel",
        tabindex: app.tab === key ? "0" : "-1",
        onclick: () => switchTab(key),
      },
      text,
    ),
  );
  const tablist = h("div", { role: "tablist", "aria-label": "World sections", class: "tabs" }, tabs);
  tablist.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const index = shown.findIndex(([key]) => key === app.tab);
    const next = shown[(index + step + shown.length) % shown.length][0];
    switchTab(next).then(() => document.getElementById(`tab-${next}`)?.focus());
  });
  fill(
    panel,
    h("div", { id: "world-header" }, worldHeader()),
    tablist,
    h(
      "div",
      { role: "tabpanel", id: "tab-panel", "aria-labelledby": `tab-${app.tab}`, class: "tab-panel" },
      renderTab(),
    ),
  );
}

function worldHeader() {
  const world = app.world;
  const ownerNote = !app.me
    ? "you are not signed in"
    : app.role === "OWNER"
      ? "yours"
      : `you are a ${ROLE_NAMES[app.role]}`;
  return [
    h("h2", { id: "world-title", tabindex: "-1" }, world.name),
    h("p", { class: "meta" }, `${words(world.worldType)} · ${words(world.visibility)} · ${ownerNote}`),
    world.description ? h("p", { class: "description" }, world.description) : null,
  ];
}

/** The world's name, kind and description drawn again, the tab below left as it is. */
export function renderWorldHeader() {
  const header = document.getElementById("world-header");
  if (header && app.world) fill(header, worldHeader());
}

export async function switchTab(key) {
  const turn = ++navigation;
  if (app.tab === "stories" && key !== "stories" && !(await leaveStory())) return;
  if (key !== "stories") {
    app.dirty = false;
  }
  app.tab = key;
  app.itemId = null;
  // The lists and the reader's role as they are now, not as they were when the world opened.
  if (await recheckAccess()) return;
  if (key === "jobs") await attempt(async () => (app.me = await api.call("GET", "/v1/users/me")));
  if (turn === navigation) renderWorldPanel();
}

function renderTab() {
  switch (app.tab) {
    case "entities":
      return entitiesTab();
    case "places":
      return placesTab();
    case "timeline":
      return timelineTab();
    case "jobs":
      return jobsTab();
    case "settings":
      return settingsTab();
    default:
      return storiesTab();
  }
}

/** Reads the world again and draws its panel; the open story too, unless it holds unsaved text. */
export async function reloadAndRender() {
  await attempt(loadWorldContents);
  if (app.story && !app.dirty) {
    await attempt(async () => (app.story = await api.call("GET", `/v1/stories/${app.story.id}`)));
  }
  renderWorldPanel();
}

// ---------------------------------------------------------------------------
// Settings and sharing

function settingsTab() {
  const world = app.world;
  const owner = app.role === "OWNER";
  const shareRows = app.shares.map((s) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, s.username),
      h("td", {}, capitalized(ROLE_NAMES[s.role] ?? s.role)),
      h("td", {}, when(s.createTime)),
      h(
        "td",
        {},
        owner
          ? button("Remove", () => unshare(s), { "aria-label": `Stop sharing with ${s.username}`, class: "quiet" })
          : null,
      ),
    ),
  );
  const conflict = h("div", { class: "conflict", hidden: true, role: "alert" });
  return h(
    "div",
    { class: "settings" },
    owner
      ? worldSettingsForm(world, conflict)
      : h("p", { class: "muted" }, "Only the world's owner can change its settings and sharing."),
    h(
      "section",
      { class: "card", "aria-labelledby": "shares-title" },
      h("h3", { id: "shares-title" }, "Shared with"),
      app.shares.length
        ? table({}, null, ["User", "Role", "Since", ""], shareRows)
        : h("p", { class: "muted" }, "Nobody yet."),
      owner
        ? form(
            { "aria-label": "Share this world", class: "inline" },
            (values, el) =>
              attempt(async () => {
                const share = await api.call("POST", `/v1/worlds/${world.id}/shares`, {
                  body: { user: values.user, role: values.role },
                });
                el.reset();
                say(`Shared with ${share.username} as ${ROLE_NAMES[share.role] ?? share.role}.`);
                await reloadAndRender();
              }),
            field("Share with (username)", h("input", { name: "user", required: true, autocomplete: "off" })),
            field("Role", select("role", SHARE_ROLES, "READER")),
            h("button", { type: "submit" }, "Share"),
          )
        : null,
    ),
    owner ? worldInvitations(world) : null,
  );
}

/** The world fields the settings form writes, all of which its draft keeps. */
const WORLD_FIELDS = ["name", "worldType", "visibility", "description"];

/** The owner's settings form: what is typed is kept in the browser until it is saved (drafts.js). */
function worldSettingsForm(world, conflict) {
  const note = h("p", { class: "saved meta", role: "status" });
  const settings = form(
    { "aria-label": "World settings", class: "card" },
    () => attempt(() => saveWorld(settings, conflict)),
    h("h3", {}, "World settings"),
    conflict,
    field("World name", h("input", { name: "name", value: world.name, required: true, maxlength: 200 })),
    h(
      "div",
      { class: "row" },
      field("World type", select("worldType", WORLD_TYPES, world.worldType)),
      field("Visibility", select("visibility", VISIBILITIES, world.visibility ?? "DRAFT")),
    ),
    field("Description", h("textarea", { name: "description", rows: 4, value: world.description ?? "" })),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Save world"),
      button("Delete world", deleteWorld, { class: "danger" }),
    ),
    note,
  );
  settings.addEventListener("input", () => keepDraft(app.me.id, "world", world.id, worldValues(settings), app.world));
  const draft = readDraft(app.me.id, "world", world.id);
  const outcome = restore(draft, world);
  if (outcome === "none" && draft) dropDraft(app.me.id, "world", world.id);
  if (outcome === "none") return settings;
  for (const [name, value] of Object.entries(draft.fields)) {
    const control = settings.elements.namedItem(name);
    if (control) control.value = value;
  }
  if (outcome === "conflict") showWorldConflict(settings, conflict, world);
  else note.textContent = `Restored what you typed ${when(draft.time)}; not saved yet`;
  return settings;
}

function worldValues(settings) {
  const values = Object.fromEntries(new FormData(settings));
  return Object.fromEntries(WORLD_FIELDS.map((f) => [f, values[f] ?? ""]));
}

/** Saves the settings over `over` (by default the version read), or shows the conflict. */
async function saveWorld(settings, conflict, over = app.world) {
  const world = app.world;
  try {
    app.world = await api.update(`/v1/worlds/${world.id}`, { ...worldValues(settings), etag: over.etag });
  } catch (error) {
    if (!(error instanceof api.ApiError && error.reason === "ETAG_MISMATCH")) throw error;
    showWorldConflict(settings, conflict, await api.call("GET", `/v1/worlds/${world.id}`));
    return;
  }
  dropDraft(app.me.id, "world", world.id);
  say(`World “${app.world.name}” saved.`);
  await loadWorlds();
  renderWorldList();
  renderWorldPanel();
}

/** Their settings beside the ones typed here (still in the form), and the choice. */
function showWorldConflict(settings, conflict, theirs) {
  conflict.hidden = false;
  fill(
    conflict,
    h("h4", {}, "The world's settings were changed elsewhere while you were editing them"),
    h("p", {}, "Yours are still in the form below. Theirs:"),
    h(
      "dl",
      { class: "their-settings" },
      h("dt", {}, "Name"),
      h("dd", {}, theirs.name),
      h("dt", {}, "Description"),
      h("dd", {}, h("pre", { class: "their-text" }, theirs.description ?? "")),
    ),
    h(
      "div",
      { class: "actions" },
      button("Save mine over theirs", () => attempt(() => saveWorld(settings, conflict, theirs))),
      button(
        "Discard mine and load theirs",
        () => {
          dropDraft(app.me.id, "world", theirs.id);
          app.world = theirs;
          renderWorldPanel();
        },
        { class: "secondary" },
      ),
    ),
  );
}

async function unshare(share) {
  if (!confirm(`Stop sharing this world with ${share.username}?`)) return;
  if (await attempt(() => api.call("DELETE", `/v1/worlds/${app.world.id}/shares/${share.userId}`))) {
    say(`No longer shared with ${share.username}.`);
    await reloadAndRender();
  }
}

async function deleteWorld() {
  const world = app.world;
  if (!confirm(`Delete the world “${world.name}” with all its stories, entities, places and events?`)) return;
  if (!(await attempt(() => api.call("DELETE", `/v1/worlds/${world.id}`, { query: { etag: world.etag } })))) return;
  dropDraft(app.me.id, "world", world.id);
  app.world = null;
  app.story = null;
  say(`World “${world.name}” deleted.`);
  await renderWorlds();
}
