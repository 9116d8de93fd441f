// A world's characters & things, places and timeline tabs: each a list, the one open
// (its address names it) read or edited where it is shown, and a form to add one. A
// name already used in the world is pointed out as it is typed, before saving. The
// timeline keeps the server's order (by year, then place in the story) everywhere,
// groups it into eras compared without case, and says when an event has no year.

import * as api from "/assets/api.js";
import { button, charactersLeft, field, form, h, link, select, table } from "/assets/dom.js";
import { app, attempt, once, say } from "/assets/page.js";
import { pathOf } from "/assets/router.js";
import { canWrite, reloadAndRender, renderWorldPanel } from "/assets/views/world.js";

/** The limits of the proto field rules (story/v1/*.proto). */
const NAME_MAX = 200;
const KIND_MAX = 50;
const ERA_MAX = 100;
const DESCRIPTION_MAX = 10000;
const ATTRIBUTES_MAX = 50;
const ATTRIBUTE_KEY_MAX = 100;
const ATTRIBUTE_VALUE_MAX = 1000;

const ENTITY_COLUMNS = ["Name", "Type", "Description", ""];
const PLACE_COLUMNS = ["Name", "Description", "On the map", ""];
const UNNAMED_ERA = "Unnamed era";

/** Opens item `id` of the current tab in its card (its address follows). */
function openItem(id) {
  app.itemId = id;
  renderWorldPanel();
  document.getElementById("item-title")?.focus();
}

function closeItem() {
  app.itemId = null;
  renderWorldPanel();
}

/** A name as it is compared: without case and surrounding spaces. */
const sameName = (a, b) =>
  String(a ?? "")
    .trim()
    .toLowerCase() ===
  String(b ?? "")
    .trim()
    .toLowerCase();

/**
 * A hint under a name's `control` that points out, as it is typed, another item of
 * `list` (not `ownId`) with the same name: `what` names the kind ("a place").
 */
function nameInUse(control, list, ownId, what) {
  const hint = h("small", { class: "hint in-use", "aria-live": "polite" });
  const update = () => {
    const typed = control.value.trim();
    const other = typed && list.find((item) => item.id !== ownId && sameName(item.name ?? item.title, typed));
    hint.textContent = other ? `This world already has ${what} named “${other.name ?? other.title}”.` : "";
    hint.hidden = !other;
  };
  control.addEventListener("input", update);
  update();
  return hint;
}

/** A name's input with what is left of its limit and the hint of a name in use. */
function nameField(label, value, list, ownId, what) {
  const input = h("input", { name: "name", value: value ?? "", required: true, autocomplete: "off" });
  return field(label, input, [charactersLeft(input, NAME_MAX), nameInUse(input, list, ownId, what)]);
}

function descriptionField(label, value, rows = 3) {
  const area = h("textarea", { name: "description", rows, value: value ?? "" });
  return field(label, area, charactersLeft(area, DESCRIPTION_MAX));
}

/**
 * Saves `fields` over `base` (the version the form was opened from). When someone
 * changed it meanwhile, the form keeps what was typed and the next save goes over
 * their version; `rebase(theirs)` is told it.
 */
async function saveItem(collection, base, fields, rebase) {
  try {
    await api.update(`/v1/${collection}/${base.id}`, { ...fields, etag: base.etag });
  } catch (error) {
    if (!(error instanceof api.ApiError && error.reason === "ETAG_MISMATCH")) throw error;
    rebase(await api.call("GET", `/v1/${collection}/${base.id}`));
    say("Someone else changed this meanwhile. Your changes are still in the form: save again to keep them.", "error");
    return;
  }
  await reloadAndRender();
  say(`${fields.name ?? fields.title} saved.`);
}

async function removeItem(collection, item) {
  const name = item.name ?? item.title;
  if (!confirm(`Delete ${name}? It is also removed from the stories and events that mention it.`)) return;
  const ok = await attempt(() => api.call("DELETE", `/v1/${collection}/${item.id}`, { query: { etag: item.etag } }));
  if (ok && app.itemId === item.id) app.itemId = null;
  await reloadAndRender();
  if (ok) say(`${name} deleted.`);
}

/** The buttons under an item's form: save, close, delete. */
function itemActions(collection, item) {
  return h(
    "div",
    { class: "actions" },
    h("button", { type: "submit" }, "Save changes"),
    button("Close", closeItem, { class: "secondary" }),
    button("Delete", () => removeItem(collection, item), { class: "danger" }),
  );
}

/** The open item's card: its form for a writer, its details for a reader. */
function itemCard(item, what, editor, details) {
  if (!app.itemId) return null;
  if (!item)
    return h(
      "p",
      { class: "notice", role: "status" },
      `This ${what} is not in the world any more: it was deleted, or never was here.`,
    );
  const name = item.name ?? item.title;
  return h(
    "section",
    { class: "card item-card", "aria-labelledby": "item-title" },
    h("h4", { id: "item-title", tabindex: "-1" }, canWrite() ? `Edit “${name}”` : name),
    canWrite()
      ? editor(item)
      : [h("dl", { class: "details" }, details(item)), button("Close", closeItem, { class: "secondary" })],
  );
}

/** A name that opens its item: the link of a row. */
const opener = (item) =>
  link(
    pathOf({ view: "worlds", worldId: app.world.id, tab: app.tab, itemId: item.id }),
    () => openItem(item.id),
    { class: "link", "aria-current": app.itemId === item.id ? "true" : null },
    item.name ?? item.title,
  );

const detail = (term, value) => (value ? [h("dt", {}, term), h("dd", {}, value)] : null);

// ---------------------------------------------------------------------------
// Characters and things

export function entitiesTab() {
  const rows = app.entities.map((e) =>
    h(
      "tr",
      { class: app.itemId === e.id ? "current" : null },
      h("th", { scope: "row" }, opener(e)),
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
  const open = app.entities.find((e) => e.id === app.itemId);
  return h(
    "div",
    {},
    h("h3", {}, "Characters & things"),
    app.entities.length
      ? table({ id: "entities-table" }, `${app.entities.length} in this world`, ENTITY_COLUMNS, rows)
      : h("p", { class: "muted" }, "None yet. Add one below, or let an analysis find them in your stories."),
    itemCard(open, "character or thing", entityEditor, entityDetails),
    canWrite() ? newEntityForm() : null,
    h(
      "datalist",
      { id: "entity-types" },
      ["character", "faction", "item", "creature"].map((t) => h("option", { value: t })),
    ),
  );
}

function kindField(value) {
  const input = h("input", { name: "entityType", list: "entity-types", value: value ?? "" });
  return field("Kind", input, charactersLeft(input, KIND_MAX));
}

function newEntityForm() {
  return form(
    { "aria-label": "Add a character or thing", class: "card" },
    (values, el) =>
      attempt(async () => {
        const entity = await api.call("POST", `/v1/worlds/${app.world.id}/entities`, {
          body: { name: values.name, entityType: values.entityType, description: values.description },
          query: once(),
        });
        el.reset();
        await reloadAndRender();
        say(`${entity.name} added.`);
      }),
    h("h4", {}, "Add a character or thing"),
    h(
      "div",
      { class: "row" },
      nameField("Name", "", app.entities, null, "a character or thing"),
      kindField("character"),
    ),
    descriptionField("Description", "", 2),
    h("button", { type: "submit" }, "Add"),
  );
}

function entityEditor(entity) {
  let base = entity;
  const attributes = attributesEditor(entity.attributes ?? {});
  return form(
    { "aria-label": `Edit ${entity.name}`, id: "item-form" },
    (values) =>
      attempt(() =>
        saveItem(
          "entities",
          base,
          {
            name: values.name,
            entityType: values.entityType,
            description: values.description,
            attributes: attributes.read(),
          },
          (theirs) => (base = theirs),
        ),
      ),
    h(
      "div",
      { class: "row" },
      nameField("Name", entity.name, app.entities, entity.id, "a character or thing"),
      kindField(entity.entityType),
    ),
    descriptionField("Description", entity.description, 4),
    attributes.element,
    itemActions("entities", entity),
  );
}

function entityDetails(entity) {
  return [
    detail("Kind", entity.entityType),
    detail("Description", entity.description),
    Object.entries(entity.attributes ?? {}).map(([key, value]) => detail(key, value)),
  ];
}

/**
 * The attributes of an entity as rows of name and value, with rows to add and remove;
 * `read()` gives them back as an object (rows without a name left out).
 */
function attributesEditor(initial) {
  const rows = h("div", { class: "attributes" });
  const addRow = (key = "", value = "") => {
    const keyInput = h("input", { "aria-label": "Attribute", value: key, maxlength: ATTRIBUTE_KEY_MAX });
    const valueInput = h("input", { "aria-label": "Value", value, maxlength: ATTRIBUTE_VALUE_MAX });
    const row = h("div", { class: "attribute" }, keyInput, valueInput);
    row.append(
      h(
        "button",
        { type: "button", class: "quiet", "aria-label": "Remove this attribute", onclick: () => row.remove() },
        "Remove",
      ),
    );
    rows.append(row);
    return keyInput;
  };
  for (const [key, value] of Object.entries(initial)) addRow(key, value);
  const add = h("button", { type: "button", class: "secondary" }, "Add an attribute");
  add.addEventListener("click", () => {
    if (rows.children.length >= ATTRIBUTES_MAX)
      say(`A character or thing has at most ${ATTRIBUTES_MAX} attributes.`, "error");
    else addRow().focus();
  });
  const element = h(
    "fieldset",
    { class: "attributes-editor" },
    h("legend", {}, "Attributes"),
    h("p", { class: "hint" }, "Such as age, eyes or allegiance: a name and its value."),
    rows,
    add,
  );
  const read = () =>
    Object.fromEntries(
      [...rows.children]
        .map((row) => [...row.querySelectorAll("input")].map((input) => input.value.trim()))
        .filter(([key]) => key),
    );
  return { element, read };
}

// ---------------------------------------------------------------------------
// Places

const at = (l) => (l.coordinates ? `${l.coordinates.x ?? 0}, ${l.coordinates.y ?? 0}` : "");

export function placesTab() {
  const rows = app.locations.map((l) =>
    h(
      "tr",
      { class: app.itemId === l.id ? "current" : null },
      h("th", { scope: "row" }, opener(l)),
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
  const open = app.locations.find((l) => l.id === app.itemId);
  return h(
    "div",
    {},
    h("h3", {}, "Places"),
    app.locations.length
      ? table({ id: "places-table" }, `${app.locations.length} in this world`, PLACE_COLUMNS, rows)
      : h("p", { class: "muted" }, "No places yet."),
    itemCard(open, "place", placeEditor, (l) => [detail("Description", l.description), detail("On the map", at(l))]),
    canWrite() ? newPlaceForm() : null,
  );
}

/** The map's x and y; empty when the place is not on the map. */
function mapFields(coordinates) {
  return h(
    "div",
    { class: "row" },
    field("Map x", h("input", { name: "x", type: "number", step: "any", value: coordinates?.x ?? "" })),
    field("Map y", h("input", { name: "y", type: "number", step: "any", value: coordinates?.y ?? "" })),
  );
}

/** The coordinates of the form's values; null (not on the map) when both are empty. */
const coordinatesOf = (values) =>
  values.x === "" && values.y === "" ? null : { x: Number(values.x || 0), y: Number(values.y || 0) };

function newPlaceForm() {
  return form(
    { "aria-label": "Add a place", class: "card" },
    (values, el) =>
      attempt(async () => {
        const body = { name: values.name, description: values.description };
        const coordinates = coordinatesOf(values);
        if (coordinates) body.coordinates = coordinates;
        const place = await api.call("POST", `/v1/worlds/${app.world.id}/locations`, { body, query: once() });
        el.reset();
        await reloadAndRender();
        say(`${place.name} added.`);
      }),
    h("h4", {}, "Add a place"),
    nameField("Name", "", app.locations, null, "a place"),
    descriptionField("Description", "", 2),
    mapFields(null),
    h("button", { type: "submit" }, "Add"),
  );
}

function placeEditor(place) {
  let base = place;
  return form(
    { "aria-label": `Edit ${place.name}`, id: "item-form" },
    (values) =>
      attempt(() =>
        saveItem(
          "locations",
          base,
          { name: values.name, description: values.description, coordinates: coordinatesOf(values) },
          (theirs) => (base = theirs),
        ),
      ),
    nameField("Name", place.name, app.locations, place.id, "a place"),
    descriptionField("Description", place.description, 4),
    mapFields(place.coordinates),
    itemActions("locations", place),
  );
}

// ---------------------------------------------------------------------------
// Timeline

/**
 * The events, in the order given, in runs that share an era: eras compared without
 * case or surrounding spaces ("Unnamed era" and "Unnamed Era" are one), an event
 * without one in the unnamed era. Each run is named as its first event names it.
 */
export function eraRuns(events) {
  const runs = [];
  for (const event of events) {
    const era = event.era?.trim() || UNNAMED_ERA;
    const last = runs.at(-1);
    if (last && sameName(last.era, era)) last.events.push(event);
    else runs.push({ era, events: [event] });
  }
  return runs;
}

/** The year of an event (int64 in JSON is a string; 0, the default, is no year). */
export function yearOf(event) {
  const year = Number(event.year ?? 0);
  return year ? `Year ${year}` : "No year";
}

export function timelineTab() {
  const storyTitle = (id) => app.stories.find((s) => s.id === id)?.title ?? "a story";
  const event = (e) =>
    h(
      "li",
      { class: app.itemId === e.id ? "current" : null },
      h("span", { class: Number(e.year ?? 0) ? "year" : "year none" }, yearOf(e)),
      opener(e),
      e.storyId ? h("span", { class: "meta" }, ` from “${storyTitle(e.storyId)}”`) : null,
      e.description ? h("p", {}, e.description) : null,
      canWrite()
        ? button("Delete", () => removeItem("events", e), { "aria-label": `Delete event ${e.title}`, class: "quiet" })
        : null,
    );
  const runs = eraRuns(app.events);
  const open = app.events.find((e) => e.id === app.itemId);
  return h(
    "div",
    {},
    h("h3", {}, "Timeline"),
    h(
      "div",
      { id: "timeline" },
      runs.length
        ? runs.map((run) =>
            h("section", { class: "era" }, h("h4", {}, run.era), h("ol", { class: "events" }, run.events.map(event))),
          )
        : h(
            "p",
            { class: "muted" },
            "No events yet. Add one below, or extract them from your stories on the AI jobs tab.",
          ),
    ),
    itemCard(open, "event", eventEditor, (e) => [
      detail("Year", yearOf(e)),
      detail("Era", e.era?.trim() || UNNAMED_ERA),
      detail("From story", e.storyId ? storyTitle(e.storyId) : ""),
      detail("What happens", e.description),
    ]),
    canWrite() ? newEventForm() : null,
    h(
      "datalist",
      { id: "eras" },
      eraRuns(app.events)
        .filter((run, index, all) => all.findIndex((other) => sameName(other.era, run.era)) === index)
        .map((run) => h("option", { value: run.era })),
    ),
  );
}

/** The title, year and era of an event's form. */
function eventFields(e) {
  const title = h("input", { name: "title", value: e?.title ?? "", required: true, autocomplete: "off" });
  const era = h("input", { name: "era", value: e?.era ?? "", list: "eras" });
  return [
    field("Event title", title, [
      charactersLeft(title, NAME_MAX),
      nameInUse(title, app.events, e?.id ?? null, "an event"),
    ]),
    h(
      "div",
      { class: "row" },
      field(
        "Year",
        h("input", { name: "year", type: "number", step: "1", value: Number(e?.year ?? 0) || "" }),
        "Leave it empty when the year is not known.",
      ),
      field("Era", era, charactersLeft(era, ERA_MAX)),
    ),
  ];
}

function newEventForm() {
  return form(
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
        await reloadAndRender();
        say(`Event “${added.title}” added to the timeline.`);
      }),
    h("h4", {}, "Add an event"),
    eventFields(null),
    field("From story", select("storyId", [["", "(none)"], ...app.stories.map((s) => [s.id, s.title])], "")),
    descriptionField("What happens", "", 2),
    h("button", { type: "submit" }, "Add event"),
  );
}

function eventEditor(e) {
  let base = e;
  return form(
    { "aria-label": `Edit ${e.title}`, id: "item-form" },
    (values) =>
      attempt(() =>
        saveItem(
          "events",
          base,
          { title: values.title, year: values.year || "0", era: values.era, description: values.description },
          (theirs) => (base = theirs),
        ),
      ),
    eventFields(e),
    descriptionField("What happens", e.description, 3),
    itemActions("events", e),
  );
}
