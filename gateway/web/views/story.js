// The stories tab: a world's stories in reading order, moving them up and down, and the
// editor, which saves over the version it opened and, when someone else saved in
// between, shows the conflict without losing the text typed.

import * as api from "/assets/api.js";
import { button, field, fill, form, h, select, when, words } from "/assets/dom.js";
import { app, attempt, once, say, sentence } from "/assets/page.js";
import { canWrite, nameOf, renderWorldPanel } from "/assets/views/world.js";
import { VISIBILITIES } from "/assets/views/worlds.js";

/** The story fields the editor writes; anything else (links, summary) may change meanwhile. */
const STORY_FIELDS = ["title", "content", "genre", "visibility"];

export function storiesTab() {
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
