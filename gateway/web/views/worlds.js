// The worlds view: the worlds the user may read, theirs first, and the form that
// creates one (the public worlds only, for a visitor who is not signed in). The open
// world's panel beside them is views/world.js.

import * as api from "/assets/api.js";
import { field, fill, form, h, link, select, words } from "/assets/dom.js";
import { app, attempt, main, once, say } from "/assets/page.js";
import { pathOf } from "/assets/router.js";
import { myInvitations } from "/assets/views/invitations.js";
import { myStoriesSection } from "/assets/views/mine.js";
import { openWorld, renderWorldPanel } from "/assets/views/world.js";

export const WORLD_TYPES = ["FANTASY", "SCI_FI", "MODERN", "HISTORICAL", "OTHER"].map((t) => [t, words(t)]);
export const VISIBILITIES = [
  ["DRAFT", "Draft: work in progress, not public"],
  ["PRIVATE", "Private: you and those you share with"],
  ["PUBLIC", "Public: anyone may read it"],
];

export async function renderWorlds() {
  const list = h("div", { id: "world-list" }, h("p", { class: "muted" }, "Loading worlds…"));
  const panel = h("div", { id: "world-panel", class: "world-panel" });
  const createForm = app.me ? newWorldForm() : h("p", { class: "muted" }, "Log in to create worlds of your own.");
  fill(
    main,
    h(
      "div",
      { class: "columns" },
      h(
        "aside",
        { class: "sidebar", "aria-labelledby": "worlds-title" },
        h("h2", { id: "worlds-title" }, "Worlds"),
        app.me ? myInvitations(joined) : null,
        list,
        createForm,
        app.me ? myStoriesSection() : null,
      ),
      panel,
    ),
  );
  await attempt(loadWorlds);
  // The user may have gone to another view while the worlds loaded.
  if (!createForm.isConnected) return;
  // The create form starts open for a first world, folded away once the user has one.
  createForm.open = !app.worlds.some((w) => w.ownerId === app.me?.id);
  renderWorldList();
  renderWorldPanel();
}

/** After an invitation is accepted: the world is in the list now, and opens. */
async function joined(worldId) {
  await attempt(loadWorlds);
  renderWorldList();
  await openWorld(worldId);
}

export async function loadWorlds() {
  app.worlds = await api.listAll("/v1/worlds", "worlds");
}

export function renderWorldList() {
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
      link(
        pathOf({ view: "worlds", worldId: w.id }),
        () => openWorld(w.id),
        { class: "world-link", "aria-current": app.world?.id === w.id ? "true" : null },
        h("span", { class: "name" }, w.name),
        h("span", { class: "meta" }, `${words(w.worldType)} · ${words(w.visibility)}`),
      ),
    );
  const mine = app.worlds.filter((w) => w.ownerId === app.me?.id);
  const others = app.worlds.filter((w) => w.ownerId !== app.me?.id);
  const othersTitle = app.me ? "Shared with you or public" : "Public worlds";
  fill(
    list,
    mine.length ? [h("h3", { class: "list-title" }, "Yours"), h("ul", { class: "plain" }, mine.map(item))] : null,
    others.length
      ? [h("h3", { class: "list-title" }, othersTitle), h("ul", { class: "plain" }, others.map(item))]
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
