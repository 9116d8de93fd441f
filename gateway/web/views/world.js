// One world, open in its panel: its heading and tabs, and the tabs of its characters
// and things, places, timeline, settings and sharing. The stories tab is
// views/story.js, the AI jobs tab views/jobs.js. What is typed in the settings is kept
// in the browser until it is saved (drafts.js).

import * as api from "/assets/api.js";
import { button, field, fill, form, h, select, table, when, words } from "/assets/dom.js";
import { app, attempt, once, say, sentence } from "/assets/page.js";
import { dropDraft, keepDraft, readDraft, restore } from "/assets/drafts.js";
import { jobsTab } from "/assets/views/jobs.js";
import { leaveStory, storiesTab } from "/assets/views/story.js";
import { VISIBILITIES, WORLD_TYPES, loadWorlds, renderWorldList, renderWorlds } from "/assets/views/worlds.js";

const ROLE_NAMES = { OWNER: "owner", CO_AUTHOR: "co-author", READER: "reader", VIEWER: "reader" };
const SHARE_ROLES = [
  ["READER", "Reader (reads everything)"],
  ["CO_AUTHOR", "Co-author (also writes stories, entities, places, events)"],
];

/** The headings of the entity and place tables; the last column holds actions. */
const ENTITY_COLUMNS = ["Name", "Type", "Description", ""];
const PLACE_COLUMNS = ["Name", "Description", "On the map", ""];

const TABS = [
  ["stories", "Stories"],
  ["entities", "Characters & things"],
  ["places", "Places"],
  ["timeline", "Timeline"],
  ["jobs", "AI jobs"],
  ["settings", "Settings & sharing"],
];

export async function openWorld(id) {
  if (!(await leaveStory())) return;
  const ok = await attempt(async () => {
    await loadWorldContents(id);
    app.story = null;
    app.dirty = false;
    app.tab = "stories";
  });
  if (!ok) return;
  renderWorldList();
  renderWorldPanel();
  document.getElementById("world-title")?.focus();
}

/** World `id` (the open one by default) with its stories, entities, places and shares, and the caller's role in it. */
export async function loadWorldContents(id = app.world.id) {
  const [world, stories, entities, locations, shares] = await Promise.all([
    api.call("GET", `/v1/worlds/${id}`),
    api.listAll(`/v1/worlds/${id}/stories`, "stories"),
    api.listAll(`/v1/worlds/${id}/entities`, "entities"),
    api.listAll(`/v1/worlds/${id}/locations`, "locations"),
    api.call("GET", `/v1/worlds/${id}/shares`).then(
      (r) => r?.shares ?? [],
      () => [],
    ),
  ]);
  Object.assign(app, { world, stories, entities, locations, shares });
  const share = shares.find((s) => s.userId === app.me.id);
  app.role = app.world.ownerId === app.me.id ? "OWNER" : (share?.role ?? "VIEWER");
}

export function canWrite() {
  return app.role === "OWNER" || app.role === "CO_AUTHOR";
}

/** The name of the item `id` of `list` (an entity or a place), or "(removed)". */
export const nameOf = (list, id) => list.find((item) => item.id === id)?.name ?? "(removed)";

export function renderWorldPanel() {
  const panel = document.getElementById("world-panel");
  if (!panel) return;
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
  const tabs = TABS.map(([key, text]) =>
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
    const index = TABS.findIndex(([key]) => key === app.tab);
    const next = TABS[(index + step + TABS.length) % TABS.length][0];
    switchTab(next).then(() => document.getElementById(`tab-${next}`)?.focus());
  });
  const ownerNote = app.role === "OWNER" ? "yours" : `you are a ${ROLE_NAMES[app.role]}`;
  fill(
    panel,
    h("h2", { id: "world-title", tabindex: "-1" }, world.name),
    h("p", { class: "meta" }, `${words(world.worldType)} · ${words(world.visibility)} · ${ownerNote}`),
    world.description ? h("p", { class: "description" }, world.description) : null,
    tablist,
    h(
      "div",
      { role: "tabpanel", id: "tab-panel", "aria-labelledby": `tab-${app.tab}`, class: "tab-panel" },
      renderTab(),
    ),
  );
}

export async function switchTab(key) {
  if (app.tab === "stories" && key !== "stories" && !(await leaveStory())) return;
  if (key !== "stories") {
    app.dirty = false;
  }
  app.tab = key;
  if (key === "jobs") await attempt(async () => (app.me = await api.call("GET", "/v1/users/me")));
  renderWorldPanel();
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

// ---------------------------------------------------------------------------
// Entities and places

function entitiesTab() {
  const rows = app.entities.map((e) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, e.name),
      h("td", {}, e.entityType ?? ""),
      h("td", { class: "wrap" }, e.description ?? ""),
      h(
        "td",
        {},
        canWrite()
          ? button("Delete", () => removeItem("entities", e), { "aria-label": `Delete ${e.name}`, class: "quiet" })
          : null,
      ),
    ),
  );
  return h(
    "div",
    {},
    h("h3", {}, "Characters & things"),
    app.entities.length
      ? table({ id: "entities-table" }, `${app.entities.length} in this world`, ENTITY_COLUMNS, rows)
      : h("p", { class: "muted" }, "None yet. Add one below, or let an analysis find them in your stories."),
    canWrite()
      ? form(
          { "aria-label": "Add a character or thing", class: "card" },
          (values, el) =>
            attempt(async () => {
              const entity = await api.call("POST", `/v1/worlds/${app.world.id}/entities`, {
                body: { name: values.name, entityType: values.entityType, description: values.description },
                query: once(),
              });
              el.reset();
              say(`${entity.name} added.`);
              await reloadAndRender();
            }),
          h("h4", {}, "Add a character or thing"),
          h(
            "div",
            { class: "row" },
            field("Name", h("input", { name: "name", required: true, maxlength: 200 })),
            field("Kind", h("input", { name: "entityType", list: "entity-types", maxlength: 50, value: "character" })),
          ),
          h(
            "datalist",
            { id: "entity-types" },
            ["character", "faction", "item", "creature"].map((t) => h("option", { value: t })),
          ),
          field("Description", h("textarea", { name: "description", rows: 2 })),
          h("button", { type: "submit" }, "Add"),
        )
      : null,
  );
}

function placesTab() {
  const at = (l) => (l.coordinates ? `${l.coordinates.x ?? 0}, ${l.coordinates.y ?? 0}` : "");
  const rows = app.locations.map((l) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, l.name),
      h("td", { class: "wrap" }, l.description ?? ""),
      h("td", {}, at(l)),
      h(
        "td",
        {},
        canWrite()
          ? button("Delete", () => removeItem("locations", l), { "aria-label": `Delete ${l.name}`, class: "quiet" })
          : null,
      ),
    ),
  );
  return h(
    "div",
    {},
    h("h3", {}, "Places"),
    app.locations.length
      ? table({ id: "places-table" }, `${app.locations.length} in this world`, PLACE_COLUMNS, rows)
      : h("p", { class: "muted" }, "No places yet."),
    canWrite()
      ? form(
          { "aria-label": "Add a place", class: "card" },
          (values, el) =>
            attempt(async () => {
              const body = { name: values.name, description: values.description };
              if (values.x !== "" || values.y !== "")
                body.coordinates = { x: Number(values.x || 0), y: Number(values.y || 0) };
              const place = await api.call("POST", `/v1/worlds/${app.world.id}/locations`, { body, query: once() });
              el.reset();
              say(`${place.name} added.`);
              await reloadAndRender();
            }),
          h("h4", {}, "Add a place"),
          field("Name", h("input", { name: "name", required: true, maxlength: 200 })),
          field("Description", h("textarea", { name: "description", rows: 2 })),
          h(
            "div",
            { class: "row" },
            field("Map x", h("input", { name: "x", type: "number", step: "any" })),
            field("Map y", h("input", { name: "y", type: "number", step: "any" })),
          ),
          h("button", { type: "submit" }, "Add"),
        )
      : null,
  );
}

async function removeItem(collection, item) {
  if (!confirm(`Delete ${item.name}? It is also removed from the stories and events that mention it.`)) return;
  const ok = await attempt(() => api.call("DELETE", `/v1/${collection}/${item.id}`, { query: { etag: item.etag } }));
  if (ok) say(`${item.name} deleted.`);
  await reloadAndRender();
}

async function reloadAndRender() {
  await attempt(loadWorldContents);
  if (app.story && !app.dirty) {
    await attempt(async () => (app.story = await api.call("GET", `/v1/stories/${app.story.id}`)));
  }
  renderWorldPanel();
}

// ---------------------------------------------------------------------------
// Timeline

function timelineTab() {
  const box = h("div", { id: "timeline" }, h("p", { class: "muted" }, "Loading the timeline…"));
  attempt(async () => {
    const timeline = await api.call("GET", `/v1/worlds/${app.world.id}/timeline`);
    const eras = timeline?.eras ?? [];
    const event = (e) =>
      h(
        "li",
        {},
        h("span", { class: "year" }, `Year ${e.year ?? 0}`),
        h("strong", {}, e.title),
        e.storyId
          ? h("span", { class: "meta" }, ` from “${app.stories.find((s) => s.id === e.storyId)?.title ?? "a story"}”`)
          : null,
        e.description ? h("p", {}, e.description) : null,
        canWrite()
          ? button("Delete", () => deleteEvent(e), { "aria-label": `Delete event ${e.title}`, class: "quiet" })
          : null,
      );
    fill(
      box,
      eras.length
        ? eras.map((era) =>
            h(
              "section",
              { class: "era" },
              h("h4", {}, era.era || "Unnamed era"),
              h("ol", { class: "events" }, (era.events ?? []).map(event)),
            ),
          )
        : h(
            "p",
            { class: "muted" },
            "No events yet. Add one below, or extract them from your stories on the AI jobs tab.",
          ),
    );
  });
  return h(
    "div",
    {},
    h("h3", {}, "Timeline"),
    box,
    canWrite()
      ? form(
          { "aria-label": "Add an event", class: "card" },
          (values, el) =>
            attempt(async () => {
              const body = {
                title: values.title,
                year: values.year || "0",
                era: values.era,
                description: values.description,
              };
              if (values.storyId) body.storyId = values.storyId;
              const added = await api.call("POST", `/v1/worlds/${app.world.id}/events`, { body, query: once() });
              el.reset();
              say(`Event “${added.title}” added to the timeline.`);
              renderWorldPanel();
            }),
          h("h4", {}, "Add an event"),
          h(
            "div",
            { class: "row" },
            field("Event title", h("input", { name: "title", required: true, maxlength: 200 })),
            field("Year", h("input", { name: "year", type: "number", step: "1" })),
          ),
          h(
            "div",
            { class: "row" },
            field("Era", h("input", { name: "era", maxlength: 100 })),
            field("From story", select("storyId", [["", "(none)"], ...app.stories.map((s) => [s.id, s.title])], "")),
          ),
          field("What happens", h("textarea", { name: "description", rows: 2 })),
          h("button", { type: "submit" }, "Add event"),
        )
      : null,
  );
}

async function deleteEvent(event) {
  if (!confirm(`Delete the event “${event.title}”?`)) return;
  if (await attempt(() => api.call("DELETE", `/v1/events/${event.id}`, { query: { etag: event.etag } })))
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
      h("td", {}, sentence(ROLE_NAMES[s.role] ?? s.role)),
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
  settings.addEventListener("input", () =>
    keepDraft(app.me.id, "world", world.id, worldValues(settings), app.world),
  );
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
