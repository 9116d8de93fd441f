// Signing in: the forms to log in and to create an account, and what signing in and
// out changes on the page. The sign-in screen keeps the address it was shown at (a
// link, or where the writer was when the session ended): signing in goes there.

import * as api from "/assets/api.js";
import { button, field, fill, form, h } from "/assets/dom.js";
import { show, showPath } from "/assets/nav.js";
import { app, attempt, main, say, sayError } from "/assets/page.js";
import { leaveStory } from "/assets/views/story.js";

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
  const providers = h("div", { class: "oidc-providers" });
  showProviders(providers);
  fill(
    main,
    h(
      "div",
      { class: "auth" },
      h("section", { class: "card" }, h("h2", { id: "login-title" }, "Log in"), loginForm, providers),
      h("section", { class: "card" }, h("h2", { id: "register-title" }, "Create an account"), registerForm),
    ),
  );
}

/** A "Sign in with …" button for each configured OpenID Connect provider. */
async function showProviders(into) {
  let providers = [];
  try {
    providers = await api.oidcProviders();
  } catch {
    return; // The password form still works; a failed list is no reason to say anything.
  }
  fill(
    into,
    ...providers.map((provider) =>
      button(`Sign in with ${title(provider.name)}`, () => attempt(() => api.startOidc(provider.name))),
    ),
  );
}

/** `google` → `Google`. */
function title(name) {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/**
 * The provider sent the browser back to `/signin/oidc/{provider}?code=…&state=…` (or
 * `?error=…`): finishes the sign-in and shows the worlds; false, once the error is
 * said, when it did not finish.
 */
export async function finishOidcSignIn() {
  const provider = decodeURIComponent(location.pathname.split("/").at(-1));
  const query = new URLSearchParams(location.search);
  history.replaceState(null, "", "/worlds");
  if (query.has("error")) {
    say(`The sign-in with ${title(provider)} did not finish: ${query.get("error")}.`, "error");
    return false;
  }
  try {
    const user = await api.finishOidc(provider, query.get("code") ?? "", query.get("state") ?? "");
    await signedIn(user, `Welcome, ${user.username}.`);
    return true;
  } catch (error) {
    sayError(error);
    return false;
  }
}

/** Shows the page to `user`, at the address the page is at (the story editor restores its draft). */
export async function signedIn(user, greeting) {
  app.me = user;
  app.world = null;
  if (greeting) say(greeting);
  // Said first: what the story's editor finds (a conflict) is said after it.
  if (takePlace(user)) say("You are signed in again, back where you were.");
  const shown = showPath();
  main.focus();
  await shown;
}

/** Where the page is kept for after signing in again: this tab's own, like its session. */
const PLACE_KEY = "fabula.place";

/**
 * Remembers who was where when their session ended: the address stays in the address
 * bar, and the unsaved text of the story is already in the browser (drafts.js).
 */
export function rememberPlace() {
  if (!app.me) return;
  const place = { userId: app.me.id, path: location.pathname };
  sessionStorage.setItem(PLACE_KEY, JSON.stringify(place));
}

/** The place remembered for `user` when it is where the page is, forgotten once read; null when there is none. */
function takePlace(user) {
  const place = api.takeFromSession(PLACE_KEY);
  return place?.userId === user.id && place.path === location.pathname ? place : null;
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
    itemId: null,
    job: null,
    jobId: null,
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
  api.browseSignedOut();
  history.pushState(null, "", "/");
  show("worlds");
  say("You have logged out.");
}
