// What every view shares: the state the page knows, its main region, and messages in
// its live region (an API error shown with the API's own message).

import { ApiError, SESSION_ENDED } from "/assets/api.js";
import { fill, h } from "/assets/dom.js";

export const main = document.getElementById("main");
const flash = document.getElementById("flash");

/** Everything the page knows; views read it and actions change it, then re-render. */
export const app = {
  me: null, // null for a visitor who is not signed in (they may read public worlds)
  view: "worlds", // worlds, admin, job (one job on its own) or auth (signing in)
  worlds: [],
  world: null,
  role: null, // OWNER, CO_AUTHOR, READER or VIEWER of the open world
  tab: "stories",
  stories: [],
  entities: [],
  locations: [],
  shares: [],
  events: [], // the world's events in the timeline's order
  itemId: null, // the character, place or event open in its tab
  story: null, // the story open in the editor, as last read
  dirty: false, // the editor holds changes not saved yet
  newStoryTitle: "", // typed in the new story form, not yet added
  job: null, // the JobView of the job being followed
  jobId: null, // the job the address names (its tab, or /jobs/{id})
};

export function say(text, kind = "info") {
  fill(
    flash,
    h(
      "div",
      { class: `flash ${kind}` },
      h("p", {}, kind === "error" ? h("strong", {}, "Error: ") : null, text),
      h("button", { type: "button", class: "quiet", onclick: () => fill(flash) }, "Dismiss"),
    ),
  );
}

/** Text with a capital first letter (a role's name, an API message). */
export const capitalized = (text) => String(text).charAt(0).toUpperCase() + String(text).slice(1);

export function sayError(error) {
  // The end of the session is said once, where the page goes to sign in (app.js).
  if (error instanceof ApiError && error.reason === SESSION_ENDED) return;
  say(error instanceof ApiError ? error.describe() : String(error?.message ?? error), "error");
}

let accessCheck = async () => {};

/**
 * `check()` runs after a call is refused or finds nothing (PERMISSION_DENIED,
 * NOT_FOUND): the reader's access may have been withdrawn meanwhile (views/world.js).
 */
export function onAccessError(check) {
  accessCheck = check;
}

/** Runs `action`, showing its error; true when it worked. */
export async function attempt(action) {
  try {
    await action();
    return true;
  } catch (error) {
    sayError(error);
    if (error instanceof ApiError && ["NOT_FOUND", "PERMISSION_DENIED"].includes(error.status)) await accessCheck();
    return false;
  }
}

/** The query of an idempotent create: a new request id, where the browser can make one. */
export function once() {
  const requestId = globalThis.crypto?.randomUUID?.();
  return requestId ? { requestId } : undefined;
}
