// The bar at the top (the views a user may go to, who is signed in, Log out), going
// from one view to another, and the address bar that follows the view (router.js):
// each change of view pushes its address, Back and Forward show the view of theirs.

import { browseSignedOut } from "/assets/api.js";
import { button, fill, h } from "/assets/dom.js";
import { app } from "/assets/page.js";
import { pathOf, placeOf } from "/assets/router.js";
import { logOut, renderAuth } from "/assets/views/account.js";
import { renderAdmin } from "/assets/views/admin.js";
import { renderJob } from "/assets/views/jobs.js";
import { leaveStory } from "/assets/views/story.js";
import { closeWorld, openWorld } from "/assets/views/world.js";
import { renderWorlds } from "/assets/views/worlds.js";

const nav = document.getElementById("nav");

/** True while the page shows the view an address names: nothing is pushed meanwhile. */
let following = false;

/**
 * Shows `view`; the promise settles once it has loaded what it shows. A visitor who
 * is not signed in may read a public world; anything else asks them to sign in.
 */
export function show(view) {
  app.view = app.me || (view === "worlds" && app.world) ? view : "auth";
  renderNav();
  if (app.view === "auth") return renderAuth();
  syncAddress();
  if (view === "admin") return renderAdmin();
  if (view === "job") return renderJob();
  return renderWorlds();
}

/** The place the page shows now, as router.js names it. */
function shownPlace() {
  if (app.view === "job") return { view: "job", itemId: app.jobId };
  const open = { stories: app.story?.id, jobs: app.jobId }[app.tab];
  const itemId = ["stories", "jobs"].includes(app.tab) ? open : app.itemId;
  return { view: app.view, worldId: app.world?.id, tab: app.tab, itemId };
}

/**
 * Puts the address of what is shown in the address bar: a new history entry, or in
 * place of the current one with `replace`. The sign-in screen keeps the address it was
 * asked for, so that signing in goes there.
 */
export function syncAddress(replace = false) {
  if (following || app.view === "auth") return;
  const path = pathOf(shownPlace());
  if (path === location.pathname) return;
  history[replace ? "replaceState" : "pushState"](null, "", path);
}

/** Shows the view `path` names: at start, after signing in, on Back and Forward. */
export async function showPath(path = location.pathname) {
  const place = placeOf(path);
  following = true;
  try {
    await showPlace(place);
  } finally {
    following = false;
  }
  syncAddress(true);
}

async function showPlace(place) {
  if (place.view === "worlds" && place.worldId) return openWorld(place.worldId, place);
  if (!(await leaveStory())) return;
  closeWorld();
  if (place.view === "job") app.jobId = place.itemId;
  await show(place.view);
}

/** Goes to `view` (the worlds or admin), as a new entry in the history. */
async function goTo(view) {
  if (!(await leaveStory())) return;
  closeWorld();
  await show(view);
}

window.addEventListener("popstate", () => showPath());

/** The sign-in screen, from a page read without signing in; signing in comes back here. */
function askToSignIn() {
  app.view = "auth";
  renderNav();
  renderAuth();
}

/** Reading without an account: public worlds only, and a way to sign in. */
export function startSignedOut() {
  browseSignedOut();
  return showPath();
}

function renderNav() {
  if (!app.me) {
    fill(nav, app.view === "auth" ? null : button("Log in or create an account", askToSignIn));
    return;
  }
  const link = (text, view) =>
    h(
      "button",
      {
        type: "button",
        class: "nav-link",
        "aria-current": app.view === view ? "page" : null,
        onclick: () => goTo(view),
      },
      text,
    );
  fill(
    nav,
    link("Worlds", "worlds"),
    app.me.role === "ADMIN" ? link("Admin", "admin") : null,
    h(
      "span",
      { class: "who" },
      h("span", { class: "wide-only" }, "Signed in as "),
      h("strong", {}, app.me.displayName || app.me.username),
    ),
    button("Log out", logOut, { class: "secondary" }),
  );
}
