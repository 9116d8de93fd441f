// Fabula's web page: a small single-page app over the public REST API (see /docs).
// Views: signing in; worlds with their stories, entities, places, timeline, AI jobs,
// settings and sharing; and, for administrators, the users. Every error the API
// answers is shown with its own message in the page's live region.

import * as api from "/assets/api.js";
import { button, field, fill, form, h, select, table, uid, when, words } from "/assets/dom.js";
import { app, attempt, main, once, say, sayError, sentence } from "/assets/page.js";
import { renderAdmin } from "/assets/views/admin.js";
import { JobWatch } from "/assets/watch.js";

/** The headings of the entity and place tables; the last column holds actions. */
const ENTITY_COLUMNS = ["Name", "Type", "Description", ""];
const PLACE_COLUMNS = ["Name", "Description", "On the map", ""];

const WORLD_TYPES = ["FANTASY", "SCI_FI", "MODERN", "HISTORICAL", "OTHER"].map((t) => [t, words(t)]);
const VISIBILITIES = [
  ["DRAFT", "Draft: work in progress, not public"],
  ["PRIVATE", "Private: you and those you share with"],
  ["PUBLIC", "Public: anyone may read it"],
];
const ROLE_NAMES = { OWNER: "owner", CO_AUTHOR: "co-author", READER: "reader", VIEWER: "reader" };
const SHARE_ROLES = [
  ["READER", "Reader (reads everything)"],
  ["CO_AUTHOR", "Co-author (also writes stories, entities, places, events)"],
];
/** The story fields the editor writes; anything else (links, summary) may change meanwhile. */
const STORY_FIELDS = ["title", "content", "genre", "visibility"];
const JOB_KINDS = [
  ["analyzeStory", "Analyze a story: find its characters and places"],
  ["describeStory", "Describe a story: write its summary"],
  ["describeWorld", "Describe this world"],
  ["batchAnalyze", "Analyze up to three stories"],
  ["extractEvents", "Extract timeline events"],
  ["paraphrase", "Paraphrase a text"],
];
const FINAL_STATES = ["SUCCEEDED", "FAILED", "CANCELLED"];

const nav = document.getElementById("nav");

// ---------------------------------------------------------------------------
// Navigation and the signed-in state

function show(view) {
  app.view = view;
  renderNav();
  if (!app.me) renderAuth();
  else if (view === "admin") renderAdmin();
  else renderWorlds();
}

function renderNav() {
  if (!app.me) {
    fill(nav);
    return;
  }
  const link = (text, view) =>
    h(
      "button",
      {
        type: "button",
        class: "nav-link",
        "aria-current": app.view === view ? "page" : null,
        onclick: () => show(view),
      },
      text,
    );
  fill(
    nav,
    link("Worlds", "worlds"),
    app.me.role === "ADMIN" ? link("Admin", "admin") : null,
    h("span", { class: "who" }, "Signed in as ", h("strong", {}, app.me.displayName || app.me.username)),
    button("Log out", logOut, { class: "secondary" }),
  );
}

function signedIn(user, greeting) {
  app.me = user;
  if (greeting) say(greeting);
  show("worlds");
  main.focus();
}

function forgetEverything() {
  app.job?.stopWatching();
  Object.assign(app, {
    me: null,
    view: "worlds",
    worlds: [],
    world: null,
    role: null,
    story: null,
    dirty: false,
    job: null,
  });
}

async function logOut() {
  if (app.dirty && !confirm("Your story has changes that are not saved. Log out anyway?")) return;
  try {
    await api.logout();
  } catch (error) {
    // The session is forgotten here either way; say why the server did not confirm.
    sayError(error);
  }
  forgetEverything();
  show("worlds");
  say("You have logged out.");
}

api.onSessionEnded((message) => {
  forgetEverything();
  show("worlds");
  say(message, "error");
});

window.addEventListener("beforeunload", (event) => {
  if (app.dirty) event.preventDefault();
});

// ---------------------------------------------------------------------------
// Signing in

function renderAuth() {
  const loginForm = form(
    { "aria-labelledby": "login-title" },
    (values) => attempt(async () => signedIn(await api.login(values.login, values.password), null)),
    field("Username or email", h("input", { name: "login", autocomplete: "username", required: true })),
    field(
      "Password",
      h("input", { name: "password", type: "password", autocomplete: "current-password", required: true }),
    ),
    h("button", { type: "submit" }, "Log in"),
  );
  const registerForm = form(
    { "aria-labelledby": "register-title" },
    (values) =>
      attempt(async () => {
        const user = await api.register(values.username, values.email, values.password);
        signedIn(user, `Welcome to Fabula, ${user.username}. Start by creating a world.`);
      }),
    field(
      "Username",
      h("input", { name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 50 }),
      "3 to 50 letters, digits, _ or -",
    ),
    field("Email", h("input", { name: "email", type: "email", autocomplete: "email", required: true })),
    field(
      "Choose a password",
      h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 10 }),
      "10 to 128 characters",
    ),
    h("button", { type: "submit" }, "Create account"),
  );
  fill(
    main,
    h(
      "div",
      { class: "auth" },
      h("section", { class: "card" }, h("h2", { id: "login-title" }, "Log in"), loginForm),
      h("section", { class: "card" }, h("h2", { id: "register-title" }, "Create an account"), registerForm),
    ),
  );
}

// ---------------------------------------------------------------------------
// Worlds

async function renderWorlds() {
  const list = h("div", { id: "world-list" }, h("p", { class: "muted" }, "Loading worlds…"));
  const panel = h("div", { id: "world-panel", class: "world-panel" });
  const createForm = newWorldForm();
  fill(
    main,
    h(
      "div",
      { class: "columns" },
      h(
        "aside",
        { class: "sidebar", "aria-labelledby": "worlds-title" },
        h("h2", { id: "worlds-title" }, "Worlds"),
        list,
        createForm,
      ),
      panel,
    ),
  );
  await attempt(loadWorlds);
  // The user may have gone to another view while the worlds loaded.
  if (!createForm.isConnected) return;
  // The create form starts open for a first world, folded away once the user has one.
  createForm.open = !app.worlds.some((w) => w.ownerId === app.me.id);
  renderWorldList();
  renderWorldPanel();
}

async function loadWorlds() {
  app.worlds = await api.listAll("/v1/worlds", "worlds");
}

function renderWorldList() {
  const list = document.getElementById("world-list");
  if (!list) return;
  if (!app.worlds.length) {
    fill(list, h("p", { class: "muted" }, "No worlds yet. Create your first one below."));
    return;
  }
  const item = (w) =>
    h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "world-link",
          "aria-current": app.world?.id === w.id ? "true" : null,
          onclick: () => openWorld(w.id),
        },
        h("span", { class: "name" }, w.name),
        h("span", { class: "meta" }, `${words(w.worldType)} · ${words(w.visibility)}`),
      ),
    );
  const mine = app.worlds.filter((w) => w.ownerId === app.me.id);
  const others = app.worlds.filter((w) => w.ownerId !== app.me.id);
  fill(
    list,
    mine.length ? [h("h3", { class: "list-title" }, "Yours"), h("ul", { class: "plain" }, mine.map(item))] : null,
    others.length
      ? [h("h3", { class: "list-title" }, "Shared with you or public"), h("ul", { class: "plain" }, others.map(item))]
      : null,
  );
}

function newWorldForm() {
  return h(
    "details",
    { class: "new-world" },
    h("summary", {}, "Create a world"),
    form(
      { "aria-label": "Create a world" },
      (values, el) =>
        attempt(async () => {
          const world = await api.call("POST", "/v1/worlds", {
            body: {
              name: values.name,
              worldType: values.worldType,
              visibility: values.visibility,
              description: values.description,
            },
            query: once(),
          });
          el.reset();
          say(`World “${world.name}” created.`);
          await loadWorlds();
          await openWorld(world.id);
        }),
      field("World name", h("input", { name: "name", required: true, maxlength: 200 })),
      field("World type", select("worldType", WORLD_TYPES, "FANTASY")),
      field("Visibility", select("visibility", VISIBILITIES, "DRAFT")),
      field("Description", h("textarea", { name: "description", rows: 3 })),
      h("button", { type: "submit" }, "Create world"),
    ),
  );
}

async function openWorld(id) {
  if (app.dirty && !confirm("Your story has changes that are not saved. Leave it?")) return;
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
async function loadWorldContents(id = app.world.id) {
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

function canWrite() {
  return app.role === "OWNER" || app.role === "CO_AUTHOR";
}

const TABS = [
  ["stories", "Stories"],
  ["entities", "Characters & things"],
  ["places", "Places"],
  ["timeline", "Timeline"],
  ["jobs", "AI jobs"],
  ["settings", "Settings & sharing"],
];

function renderWorldPanel() {
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

async function switchTab(key) {
  if (
    app.tab === "stories" &&
    key !== "stories" &&
    app.dirty &&
    !confirm("Your story has changes that are not saved. Leave it?")
  )
    return;
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
// Stories

function storiesTab() {
  const stories = app.stories;
  const row = (story, index) =>
    h(
      "li",
      { class: app.story?.id === story.id ? "current" : null },
      h("button", { type: "button", class: "link", onclick: () => openStory(story.id) }, story.title),
      h("span", { class: "meta" }, ` ${words(story.visibility)} · updated ${when(story.updateTime)}`),
      canWrite()
        ? h(
            "span",
            { class: "order-buttons" },
            button("↑", () => moveStory(index, -1), {
              "aria-label": `Move “${story.title}” up`,
              disabled: index === 0,
              class: "icon",
            }),
            button("↓", () => moveStory(index, 1), {
              "aria-label": `Move “${story.title}” down`,
              disabled: index === stories.length - 1,
              class: "icon",
            }),
          )
        : null,
    );
  return h(
    "div",
    { class: "stories" },
    h("h3", {}, "Stories, in reading order"),
    stories.length
      ? h("ol", { class: "story-list" }, stories.map(row))
      : h("p", { class: "muted" }, "No stories in this world yet."),
    canWrite() ? newStoryForm() : null,
    h("div", { id: "editor" }, app.story ? storyEditor() : null),
  );
}

function newStoryForm() {
  return form(
    { "aria-label": "New story", class: "inline" },
    (values, el) =>
      attempt(async () => {
        const story = await api.call("POST", `/v1/worlds/${app.world.id}/stories`, {
          body: { title: values.title, format: "PLAIN", visibility: "DRAFT" },
          query: once(),
        });
        el.reset();
        app.stories = await api.listAll(`/v1/worlds/${app.world.id}/stories`, "stories");
        app.story = story;
        app.dirty = false;
        say(`Story “${story.title}” created. Write it below and save.`);
        renderWorldPanel();
        document.getElementById("story-content")?.focus();
      }),
    field("New story title", h("input", { name: "title", required: true, maxlength: 200 })),
    h("button", { type: "submit" }, "Add story"),
  );
}

async function openStory(id) {
  if (app.dirty && app.story?.id !== id && !confirm("Your story has changes that are not saved. Leave it?")) return;
  await attempt(async () => {
    app.story = await api.call("GET", `/v1/stories/${id}`);
    app.dirty = false;
    renderWorldPanel();
    document.getElementById("editor-title")?.focus();
  });
}

/** Moves the story one place up or down, in one step (MoveStory). */
async function moveStory(index, step) {
  const a = app.stories[index];
  if (!a || !app.stories[index + step]) return;
  // Up: in front of the one above. Down: in front of the one after the next, or last.
  const before = app.stories[step < 0 ? index - 1 : index + 2];
  await attempt(() => api.call("POST", `/v1/stories/${a.id}/move`, { body: { beforeId: before?.id ?? "", etag: a.etag } }));
  await refreshStories();
  renderWorldPanel();
  document.querySelector(`[aria-label="Move “${a.title}” ${step < 0 ? "up" : "down"}"]:not([disabled])`)?.focus();
}

async function refreshStories() {
  await attempt(async () => {
    app.stories = await api.listAll(`/v1/worlds/${app.world.id}/stories`, "stories");
    if (app.story && !app.dirty) {
      app.story = app.stories.find((s) => s.id === app.story.id) ?? null;
    }
  });
}

const nameOf = (list, id) => list.find((item) => item.id === id)?.name ?? "(removed)";

function storyEditor() {
  const story = app.story;
  const writable = canWrite();
  const conflict = h("div", { id: "conflict", class: "conflict", hidden: true });
  const editor = form(
    { "aria-labelledby": "editor-title", class: "editor", id: "story-form" },
    () => attempt(() => saveStory(editor, conflict)),
    field(
      "Title",
      h("input", { name: "title", value: story.title ?? "", required: true, maxlength: 200, readonly: !writable }),
    ),
    field(
      "Story text",
      h("textarea", {
        id: "story-content",
        name: "content",
        rows: 14,
        value: story.content ?? "",
        readonly: !writable,
      }),
    ),
    h(
      "div",
      { class: "row" },
      field("Genre", h("input", { name: "genre", value: story.genre ?? "", maxlength: 50, readonly: !writable })),
      field(
        "Story visibility",
        Object.assign(select("visibility", VISIBILITIES, story.visibility ?? "DRAFT"), { disabled: !writable }),
      ),
    ),
    writable
      ? h(
          "div",
          { class: "actions" },
          h("button", { type: "submit" }, "Save story"),
          button("Close", () => closeStory(), { class: "secondary" }),
          button("Delete story", () => deleteStory(), { class: "danger" }),
        )
      : button("Close", () => closeStory(), { class: "secondary" }),
  );
  editor.addEventListener("input", () => {
    app.dirty = true;
    editor.querySelector(".saved").textContent = "Unsaved changes";
  });
  const linked = (label, ids, list) =>
    ids?.length
      ? h("p", { class: "linked" }, h("strong", {}, `${label}: `), ids.map((id) => nameOf(list, id)).join(", "))
      : null;
  editor.append(
    h("p", { class: "saved meta", "aria-live": "polite" }, story.updateTime ? `Saved ${when(story.updateTime)}` : ""),
  );
  return h(
    "section",
    { class: "card story-editor", "aria-labelledby": "editor-title" },
    h("h3", { id: "editor-title", tabindex: "-1" }, writable ? `Editing “${story.title}”` : story.title),
    story.summary ? h("p", { class: "summary" }, h("strong", {}, "Summary: "), story.summary) : null,
    linked("Characters and things", story.entityIds, app.entities),
    linked("Places", story.locationIds, app.locations),
    conflict,
    editor,
  );
}

function editorValues(editor) {
  const values = Object.fromEntries(new FormData(editor));
  return { title: values.title, content: values.content, genre: values.genre, visibility: values.visibility };
}

const sameField = (a, b) => (a ?? "") === (b ?? "");

/**
 * Saves the editor over the version it was opened from (its etag). When someone
 * else saved in between: if they changed none of the fields the editor writes (an
 * analysis only linked characters, say), save over their version; otherwise show the
 * conflict, keep the text typed here, and let the writer choose.
 */
async function saveStory(editor, conflict, { over } = {}) {
  const base = over ?? app.story;
  const mine = editorValues(editor);
  try {
    app.story = await api.update(`/v1/stories/${base.id}`, { ...mine, etag: base.etag });
  } catch (error) {
    if (!(error instanceof api.ApiError && error.reason === "ETAG_MISMATCH")) throw error;
    const theirs = await api.call("GET", `/v1/stories/${base.id}`);
    if (!over && STORY_FIELDS.every((f) => sameField(theirs[f], app.story[f]))) {
      return saveStory(editor, conflict, { over: theirs });
    }
    showConflict(editor, conflict, theirs, error);
    return;
  }
  app.dirty = false;
  say(`Story “${app.story.title}” saved.`);
  await refreshStories();
  renderWorldPanel();
}

function showConflict(editor, conflict, theirs, error) {
  conflict.hidden = false;
  conflict.setAttribute("role", "alert");
  fill(
    conflict,
    h("h4", {}, "This story was changed by someone else while you were editing it"),
    h("p", {}, `${sentence(error.message)}. Your text is still in the editor below: nothing you typed has been lost.`),
    h(
      "details",
      {},
      h("summary", {}, `Their version, saved ${when(theirs.updateTime)}`),
      h("p", {}, h("strong", {}, "Title: "), theirs.title),
      h("pre", { class: "their-text" }, theirs.content ?? ""),
    ),
    h(
      "div",
      { class: "actions" },
      button("Overwrite with my version", () =>
        attempt(async () => {
          conflict.hidden = true;
          await saveStory(editor, conflict, { over: theirs });
        }),
      ),
      button(
        "Discard mine and load theirs",
        () => {
          if (!confirm("Throw away your changes and load their version?")) return;
          app.story = theirs;
          app.dirty = false;
          renderWorldPanel();
        },
        { class: "secondary" },
      ),
    ),
  );
  say("The story was not saved: it was changed elsewhere. Your text is kept; choose how to go on.", "error");
}

function closeStory() {
  if (app.dirty && !confirm("Your story has changes that are not saved. Close it?")) return;
  app.story = null;
  app.dirty = false;
  renderWorldPanel();
}

async function deleteStory() {
  const story = app.story;
  if (!confirm(`Delete the story “${story.title}”? This cannot be undone.`)) return;
  const ok = await attempt(() => api.call("DELETE", `/v1/stories/${story.id}`, { query: { etag: story.etag } }));
  if (!ok) return;
  app.story = null;
  app.dirty = false;
  say(`Story “${story.title}” deleted.`);
  await refreshStories();
  renderWorldPanel();
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
// AI jobs

function jobsTab() {
  const inputs = h("div", { class: "job-inputs" });
  const kind = select("kind", JOB_KINDS, app.jobKind ?? "analyzeStory");
  const showInputs = () => {
    app.jobKind = kind.value;
    fill(inputs, jobInputs(kind.value));
  };
  kind.addEventListener("change", showInputs);
  showInputs();
  const recent = h("div", { id: "recent-jobs" });
  loadRecentJobs(recent);
  return h(
    "div",
    { class: "jobs" },
    h("h3", {}, "AI jobs"),
    app.me.gptEnabled
      ? h(
          "p",
          { class: "muted" },
          "Jobs run in the background; follow their progress here and cancel them at any time.",
        )
      : h(
          "p",
          { class: "notice" },
          "You do not have model access yet: an administrator can grant it on the Admin page.",
        ),
    form(
      { "aria-label": "Start a job", class: "card" },
      (values) => attempt(() => startJob(values)),
      field("Job", kind),
      inputs,
      h("button", { type: "submit" }, "Start job"),
    ),
    h("div", { id: "job-card" }, app.job?.element),
    h("h4", {}, "Your recent jobs"),
    recent,
  );
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
    // Show what changed, but never redraw an editor holding unsaved text.
    if (app.tab !== "jobs" && !(app.tab === "stories" && app.dirty)) renderWorldPanel();
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
  const conflict = h("p", { class: "error", hidden: true, role: "alert" });
  return h(
    "div",
    { class: "settings" },
    owner
      ? form(
          { "aria-label": "World settings", class: "card" },
          (values) => attempt(() => saveWorld(values, conflict)),
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
        )
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

async function saveWorld(values, conflict) {
  const world = app.world;
  const fields = {
    name: values.name,
    worldType: values.worldType,
    visibility: values.visibility,
    description: values.description,
  };
  try {
    app.world = await api.update(`/v1/worlds/${world.id}`, { ...fields, etag: world.etag });
  } catch (error) {
    if (error instanceof api.ApiError && error.reason === "ETAG_MISMATCH") {
      conflict.hidden = false;
      fill(
        conflict,
        `${sentence(error.message)}. `,
        button("Load the current settings", () =>
          attempt(async () => {
            app.world = await api.call("GET", `/v1/worlds/${world.id}`);
            renderWorldPanel();
          }),
        ),
      );
      return;
    }
    throw error;
  }
  say(`World “${app.world.name}” saved.`);
  await loadWorlds();
  renderWorldList();
  renderWorldPanel();
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
  app.world = null;
  app.story = null;
  say(`World “${world.name}” deleted.`);
  await renderWorlds();
}

// ---------------------------------------------------------------------------
// Start

async function start() {
  let user = null;
  try {
    user = await api.resume();
  } catch (error) {
    sayError(error);
  }
  if (user) signedIn(user, null);
  else show("worlds");
}

start();
