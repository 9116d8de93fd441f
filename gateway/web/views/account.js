// Signing in: the forms to log in and to create an account, and what signing in and
// out changes on the page.

import * as api from "/assets/api.js";
import { field, fill, form, h } from "/assets/dom.js";
import { show } from "/assets/nav.js";
import { app, attempt, main, say, sayError } from "/assets/page.js";

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

export function signedIn(user, greeting) {
  app.me = user;
  if (greeting) say(greeting);
  show("worlds");
  main.focus();
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
