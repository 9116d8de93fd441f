// Signing in: the forms to log in and to create an account, and what signing in and
// out changes on the page. When the session ends, the page remembers where the writer
// was and goes back there once they have signed in again.

import * as api from "/assets/api.js";
import { field, fill, form, h } from "/assets/dom.js";
import { show } from "/assets/nav.js";
import { app, attempt, main, say, sayError } from "/assets/page.js";
import { leaveStory, openStory } from "/assets/views/story.js";
import { openWorld, switchTab } from "/assets/views/world.js";

export function renderAuth() {
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

export async function signedIn(user, greeting) {
  app.me = user;
  if (greeting) say(greeting);
  const place = takePlace(user);
  const shown = show("worlds");
  main.focus();
  if (!place) return;
  await shown;
  await returnTo(place);
}

/** Where the page is kept for after signing in again: this tab's own, like its session. */
const PLACE_KEY = "fabula.place";

/**
 * Remembers where the signed-in user is (world, tab, story) when their session ends;
 * the unsaved text of the story is already in the browser (drafts.js).
 */
export function rememberPlace() {
  if (!app.me) return;
  const place = { userId: app.me.id, worldId: app.world?.id, tab: app.tab, storyId: app.story?.id };
  sessionStorage.setItem(PLACE_KEY, JSON.stringify(place));
}

/** The place remembered for `user`, forgotten once read; null when there is none. */
function takePlace(user) {
  let place = null;
  try {
    place = JSON.parse(sessionStorage.getItem(PLACE_KEY) ?? "null");
  } catch {
    place = null;
  }
  sessionStorage.removeItem(PLACE_KEY);
  return place?.userId === user.id && place.worldId ? place : null;
}

/** Opens the world, tab and story of `place`; the story's editor restores its draft. */
async function returnTo(place) {
  await openWorld(place.worldId);
  if (app.world?.id !== place.worldId) return;
  // Said first: what the story's editor finds (a conflict) is said after it.
  say("You are signed in again, back where you were.");
  if (place.storyId) await openStory(place.storyId);
  else if (place.tab && place.tab !== "stories") await switchTab(place.tab);
}

export function forgetEverything() {
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

export async function logOut() {
  if (!(await leaveStory())) return;
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
