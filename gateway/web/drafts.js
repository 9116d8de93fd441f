// Nothing typed is lost: the unsaved text of an open editor, kept in localStorage as it
// is typed, and saving it after a pause in typing.
//
// A draft is keyed by user and resource (`fabula.draft.<userId>.story.<id>`) and holds
// the editor's fields, the fields and etag of the version they were based on, and when
// it was kept. It outlives the session and the tab: after signing in again, opening
// the resource restores it (see `restore`). It is dropped once what it holds is saved.

const PREFIX = "fabula.draft";

const keyOf = (userId, kind, id) => `${PREFIX}.${userId}.${kind}.${id}`;

/** Keeps `fields`, typed over `base` (the version read, with its etag). */
export function keepDraft(userId, kind, id, fields, base) {
  const draft = { fields, base: pick(base, Object.keys(fields)), etag: base.etag, time: new Date().toISOString() };
  try {
    localStorage.setItem(keyOf(userId, kind, id), JSON.stringify(draft));
  } catch {
    // Storage full or forbidden: the text is still in the editor, and saved soon.
  }
}

/** The draft of resource `id`, or null. */
export function readDraft(userId, kind, id) {
  try {
    const draft = JSON.parse(localStorage.getItem(keyOf(userId, kind, id)) ?? "null");
    return draft && typeof draft.fields === "object" ? draft : null;
  } catch {
    return null;
  }
}

export function dropDraft(userId, kind, id) {
  localStorage.removeItem(keyOf(userId, kind, id));
}

/** Whether `a` and `b` agree on every field of `fields` (a missing field is ""). */
export function sameFields(fields, a, b) {
  return fields.every((f) => (a?.[f] ?? "") === (b?.[f] ?? ""));
}

function pick(object, fields) {
  return Object.fromEntries(fields.map((f) => [f, object?.[f] ?? ""]));
}

/**
 * What to do with `draft` now that the server's version is `current`:
 * - "none": there is no draft, or it holds what the server holds (it was saved);
 * - "restore": the server's version is the one it was typed over, or differs from it
 *   only in fields the editor does not write (an analysis linked characters): put it
 *   in the editor and save it over `current`;
 * - "conflict": someone changed what the editor writes meanwhile: show both.
 */
export function restore(draft, current) {
  if (!draft) return "none";
  const fields = Object.keys(draft.fields);
  if (sameFields(fields, draft.fields, current)) return "none";
  if (draft.etag === current.etag || sameFields(fields, draft.base, current)) return "restore";
  return "conflict";
}

/**
 * Calls `save()` once typing has paused for `pause` ms: `typed()` after each change,
 * `cancel()` when the editor goes. Saves never overlap: one asked for while another
 * runs waits for it (`queue` runs any save, the writer's own included, in that order;
 * `save` is the one given).
 */
export function autosaver(save, pause = 2000) {
  let timer = null;
  let chain = Promise.resolve();
  const queue = (action) => {
    chain = chain.catch(() => {}).then(action);
    return chain;
  };
  return {
    save,
    typed() {
      clearTimeout(timer);
      timer = setTimeout(() => queue(save).catch(() => {}), pause);
    },
    cancel() {
      clearTimeout(timer);
      timer = null;
    },
    queue(action) {
      clearTimeout(timer);
      return queue(action);
    },
  };
}
