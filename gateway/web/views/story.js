// The stories tab: a world's stories in reading order, moving them up and down, and the
// editor. The editor keeps what is typed in the browser at once and saves it after a
// pause in typing (drafts.js), over the version it opened; when someone else saved in
// between, it shows both versions and lets the writer choose, without losing a word.
// It counts the words as they are written and shows the limits before they are hit.
// A reader sees the story as text.

import * as api from "/assets/api.js";
import { button, charactersLeft, field, fill, form, h, link, select, when, words } from "/assets/dom.js";
import { autosaver, dropDraft, keepDraft, readDraft, restore, sameFields } from "/assets/drafts.js";
import { app, attempt, capitalized, once, say } from "/assets/page.js";
import { pathOf } from "/assets/router.js";
import { canWrite, nameOf, recheckAccess, renderWorldPanel } from "/assets/views/world.js";
import { VISIBILITIES } from "/assets/views/worlds.js";

/** The story fields the editor writes; anything else (links, summary) may change meanwhile. */
const STORY_FIELDS = ["title", "content", "genre", "visibility"];
/** The limits of story/v1/stories.proto: characters of a title and genre, bytes of the text. */
const TITLE_MAX = 200;
const GENRE_MAX = 50;
const CONTENT_MAX_BYTES = 1048576;

export function storiesTab() {
  const stories = app.stories;
  const row = (story, index) =>
    h(
      "li",
      { class: app.story?.id === story.id ? "current" : null },
      link(
        pathOf({ view: "worlds", worldId: app.world.id, tab: "stories", itemId: story.id }),
        () => openStory(story.id),
        { class: "link" },
        story.title,
      ),
      h(
        "span",
        { class: "meta" },
        ` ${words(story.visibility)} · ${(story.wordCount ?? 0).toLocaleString()} words · updated ${when(story.updateTime)}`,
      ),
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
        if (!(await leaveStory())) return;
        const story = await api.call("POST", `/v1/worlds/${app.world.id}/stories`, {
          body: { title: values.title, format: "PLAIN", visibility: "DRAFT" },
          query: once(),
        });
        el.reset();
        app.newStoryTitle = "";
        app.story = story;
        app.dirty = false;
        await refreshStories();
        say(`Story “${story.title}” created. Write it below and save.`);
        renderWorldPanel();
        document.getElementById("story-content")?.focus();
      }),
    // What is typed here survives the panel being drawn again (a save finishing, say).
    field(
      "New story title",
      h("input", {
        name: "title",
        required: true,
        maxlength: TITLE_MAX,
        value: app.newStoryTitle,
        oninput: (event) => (app.newStoryTitle = event.target.value),
      }),
    ),
    h("button", { type: "submit" }, "Add story"),
  );
}

export async function openStory(id) {
  if (app.story?.id !== id && !(await leaveStory())) return;
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
  await attempt(() =>
    api.call("POST", `/v1/stories/${a.id}/move`, { body: { beforeId: before?.id ?? "", etag: a.etag } }),
  );
  await refreshStories();
  renderWorldPanel();
  document.querySelector(`[aria-label="Move “${a.title}” ${step < 0 ? "up" : "down"}"]:not([disabled])`)?.focus();
}

/** Which reading of the list is the latest: an earlier one that ends later changes nothing. */
let listing = 0;

async function refreshStories() {
  const reading = ++listing;
  const open = app.story;
  await attempt(async () => {
    const stories = await api.listAll(`/v1/worlds/${app.world.id}/stories`, "stories");
    // A list carries no text (BASIC view): the open story is read again, whole.
    const listed = open && !app.dirty && stories.some((s) => s.id === open.id);
    const fresh = listed ? await api.call("GET", `/v1/stories/${open.id}`) : null;
    if (reading !== listing) return;
    app.stories = stories;
    // Unless another story was opened meanwhile (a story added while this was read).
    if (app.story === open && !app.dirty) app.story = fresh;
  });
}

/** The open editor's autosaver (drafts.js); a new one for each editor drawn. */
let saver = null;

/** How many words `text` has. */
export function wordCount(text) {
  const trimmed = String(text ?? "").trim();
  return trimmed ? trimmed.split(/\s+/).length : 0;
}

const kilobytes = (bytes) => `${(bytes / 1024).toLocaleString(undefined, { maximumFractionDigits: 1 })} KB`;

/** The line under the story's text: its words, and its size against the limit once it nears it. */
function measure(area) {
  const line = h("small", { class: "hint count", id: "story-count" });
  const update = () => {
    const count = wordCount(area.value);
    const bytes = new TextEncoder().encode(area.value).length;
    const near = bytes >= CONTENT_MAX_BYTES * 0.9;
    const size =
      bytes > CONTENT_MAX_BYTES
        ? `${kilobytes(bytes)}: over the limit of 1 MB, so it cannot be saved; shorten it or split it into two stories`
        : `${kilobytes(bytes)} of the 1 MB a story may hold`;
    line.textContent = `${count.toLocaleString()} ${count === 1 ? "word" : "words"} · ${size}`;
    line.classList.toggle("near", near);
  };
  area.addEventListener("input", update);
  update();
  return line;
}

function storyEditor() {
  saver?.cancel();
  const story = app.story;
  if (!canWrite()) return storyReader(story);
  const title = h("input", { name: "title", value: story.title ?? "", required: true });
  const content = h("textarea", { id: "story-content", name: "content", rows: 14, value: story.content ?? "" });
  const genre = h("input", { name: "genre", value: story.genre ?? "" });
  const conflict = h("div", { id: "conflict", class: "conflict", hidden: true });
  const status = h(
    "p",
    { class: "saved meta", id: "save-status", role: "status" },
    story.updateTime ? `Saved ${when(story.updateTime)}` : "",
  );
  const editor = form(
    { "aria-labelledby": "editor-title", class: "editor", id: "story-form" },
    () => attempt(() => saver.queue(() => saveStory(editor, conflict, status, { explicit: true }))),
    field("Title", title, charactersLeft(title, TITLE_MAX)),
    field("Story text", content, measure(content)),
    h(
      "div",
      { class: "row" },
      field("Genre", genre, charactersLeft(genre, GENRE_MAX)),
      field("Story visibility", select("visibility", VISIBILITIES, story.visibility ?? "DRAFT")),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Save story"),
      button("Close", () => closeStory(), { class: "secondary" }),
      button("Delete story", () => deleteStory(), { class: "danger" }),
    ),
    status,
  );
  saver = autosaver(() => autosave(editor, conflict, status));
  editor.addEventListener("input", () => typed(editor, conflict, status));
  applyDraft(editor, conflict, status);
  return h(
    "section",
    { class: "card story-editor", "aria-labelledby": "editor-title" },
    h("h3", { id: "editor-title", tabindex: "-1" }, `Editing “${story.title}”`),
    aboutStory(story),
    conflict,
    editor,
  );
}

/** The story's summary and what it links, above its text. */
function aboutStory(story) {
  const linked = (label, ids, list) =>
    ids?.length
      ? h("p", { class: "linked" }, h("strong", {}, `${label}: `), ids.map((id) => nameOf(list, id)).join(", "))
      : null;
  return [
    story.summary ? h("p", { class: "summary" }, h("strong", {}, "Summary: "), story.summary) : null,
    linked("Characters and things", story.entityIds, app.entities),
    linked("Places", story.locationIds, app.locations),
  ];
}

/** The story for someone who may read it but not change it: its text, in paragraphs. */
function storyReader(story) {
  const paragraphs = String(story.content ?? "")
    .split(/\n\s*\n/)
    .map((text) => text.trim())
    .filter(Boolean);
  const count = wordCount(story.content);
  const about = [
    story.genre,
    `${count.toLocaleString()} ${count === 1 ? "word" : "words"}`,
    `updated ${when(story.updateTime)}`,
  ];
  return h(
    "article",
    { class: "card story-reader", "aria-labelledby": "editor-title" },
    h("h3", { id: "editor-title", tabindex: "-1" }, story.title),
    h("p", { class: "meta" }, about.filter(Boolean).join(" · ")),
    aboutStory(story),
    paragraphs.length
      ? h(
          "div",
          { class: "story-text" },
          paragraphs.map((text) => h("p", {}, text)),
        )
      : h("p", { class: "muted" }, "This story has no text yet."),
    button("Close", () => closeStory(), { class: "secondary" }),
  );
}

function editorValues(editor) {
  const values = Object.fromEntries(new FormData(editor));
  return { title: values.title, content: values.content, genre: values.genre, visibility: values.visibility };
}

/** Each change is kept in the browser at once, and saved after a pause in typing. */
function typed(editor, conflict, status) {
  app.dirty = true;
  keepDraft(app.me.id, "story", app.story.id, editorValues(editor), app.story);
  if (!conflict.hidden) return;
  status.textContent = "Not saved yet";
  saver.typed();
}

/**
 * Puts the draft kept for this story (typed before the session ended, the tab closed
 * or the view changed) back in the editor: saved after a pause when the server still
 * holds the version it was typed over, shown beside the server's version when someone
 * changed the story meanwhile.
 */
function applyDraft(editor, conflict, status) {
  const story = app.story;
  const draft = readDraft(app.me.id, "story", story.id);
  const outcome = restore(draft, story);
  if (outcome === "none") {
    if (draft) dropDraft(app.me.id, "story", story.id);
    return;
  }
  for (const [name, value] of Object.entries(draft.fields)) {
    const control = editor.elements.namedItem(name);
    if (control) control.value = value;
  }
  if (outcome === "conflict") {
    app.dirty = true;
    showConflict(editor, conflict, status, story, null);
    return;
  }
  if (!app.dirty) status.textContent = `Restored what you typed ${when(draft.time)}; not saved yet`;
  app.dirty = true;
  saver.typed();
}

/** A save after a pause in typing: its outcome goes to the status line, not the flash. */
async function autosave(editor, conflict, status) {
  if (!editor.isConnected || !app.dirty || !conflict.hidden || !app.me) return;
  try {
    await saveStory(editor, conflict, status);
  } catch (error) {
    status.textContent = `Not saved: ${error instanceof api.ApiError ? error.describe() : error.message}`;
    // Refused or gone: the writer's access may have been withdrawn meanwhile.
    if (error instanceof api.ApiError && ["NOT_FOUND", "PERMISSION_DENIED"].includes(error.status))
      await recheckAccess();
  }
}

/**
 * Saves the editor over the version it was opened from (its etag). When someone
 * else saved in between: if they changed none of the fields the editor writes (an
 * analysis only linked characters, say), save over their version; otherwise show the
 * conflict, keep the text typed here, and let the writer choose. The draft goes once
 * what it holds is saved; text typed while saving stays in it.
 */
async function saveStory(editor, conflict, status, { over, explicit } = {}) {
  const base = over ?? app.story;
  const mine = editorValues(editor);
  status.textContent = "Saving…";
  let saved;
  try {
    saved = await api.update(`/v1/stories/${base.id}`, { ...mine, etag: base.etag });
  } catch (error) {
    if (!(error instanceof api.ApiError && error.reason === "ETAG_MISMATCH")) {
      status.textContent = `Not saved: ${error instanceof api.ApiError ? error.describe() : error.message}`;
      throw error;
    }
    const theirs = await api.call("GET", `/v1/stories/${base.id}`);
    if (!over && sameFields(STORY_FIELDS, theirs, app.story)) {
      return saveStory(editor, conflict, status, { over: theirs, explicit });
    }
    showConflict(editor, conflict, status, theirs, error);
    return;
  }
  if (!app.me || app.story?.id !== saved.id) return;
  app.story = saved;
  const now = editorValues(editor);
  if (sameFields(STORY_FIELDS, now, saved)) {
    app.dirty = false;
    dropDraft(app.me.id, "story", saved.id);
    status.textContent = `Saved ${when(saved.updateTime)}`;
  } else {
    keepDraft(app.me.id, "story", saved.id, now, saved);
    status.textContent = "Not saved yet";
  }
  if (!explicit) return;
  say(`Story “${app.story.title}” saved.`);
  await refreshStories();
  renderWorldPanel();
}

/** Their version beside the text typed here (still in the editor), and the choice. */
function showConflict(editor, conflict, status, theirs, error) {
  saver.cancel();
  conflict.hidden = false;
  conflict.setAttribute("role", "alert");
  const why = error ? `${capitalized(error.message)}.` : "It was changed elsewhere since you began typing.";
  fill(
    conflict,
    h("h4", {}, "This story was changed by someone else while you were editing it"),
    h("p", {}, `${why} Your text is still in the editor below: nothing you typed has been lost.`),
    h(
      "details",
      { open: true },
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
          await saver.queue(() => saveStory(editor, conflict, status, { over: theirs, explicit: true }));
        }),
      ),
      button(
        "Discard mine and load theirs",
        () => {
          if (!confirm("Throw away your changes and load their version?")) return;
          dropDraft(app.me.id, "story", theirs.id);
          app.story = theirs;
          app.dirty = false;
          renderWorldPanel();
        },
        { class: "secondary" },
      ),
    ),
  );
  status.textContent = "Not saved: the story was changed elsewhere; choose which version to keep";
  say("The story was not saved: it was changed elsewhere. Your text is kept; choose how to go on.", "error");
}

/**
 * Before the editor goes (another story, tab or world, logging out): saves what it
 * holds; true when it may go. When that fails, the writer is asked: the text stays in
 * the browser either way, and comes back when they open the story again.
 */
export async function leaveStory() {
  if (app.dirty && saver) await saver.queue(() => saver.save()).catch(() => {});
  if (!app.dirty) return true;
  return confirm(
    "Your story has changes that could not be saved. Leave it? They stay in this browser for when you open it again.",
  );
}

async function closeStory() {
  if (!(await leaveStory())) return;
  saver?.cancel();
  app.story = null;
  app.dirty = false;
  renderWorldPanel();
}

async function deleteStory() {
  const story = app.story;
  if (!confirm(`Delete the story “${story.title}”? This cannot be undone.`)) return;
  // After any save under way, with the etag it leaves; the story's draft goes with it.
  const remove = () => api.call("DELETE", `/v1/stories/${story.id}`, { query: { etag: app.story.etag } });
  const ok = await attempt(() => saver.queue(remove));
  if (!ok) return;
  dropDraft(app.me.id, "story", story.id);
  app.story = null;
  app.dirty = false;
  say(`Story “${story.title}” deleted.`);
  await refreshStories();
  renderWorldPanel();
}
