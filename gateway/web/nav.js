// The bar at the top (the views a user may go to, who is signed in, Log out) and going
// from one view to another.

import { button, fill, h } from "/assets/dom.js";
import { app } from "/assets/page.js";
import { logOut, renderAuth } from "/assets/views/account.js";
import { renderAdmin } from "/assets/views/admin.js";
import { renderWorlds } from "/assets/views/worlds.js";

const nav = document.getElementById("nav");

/** Shows `view`; the promise settles once it has loaded what it shows. */
export function show(view) {
  app.view = view;
  renderNav();
  if (!app.me) return renderAuth();
  if (view === "admin") return renderAdmin();
  return renderWorlds();
}

function renderNav() {
  if (!app.me) {
    fill(nav);
    return;
  }
  const link = (text, view) =>
    h(
      "button",
      {
        type: "button",
        class: "nav-link",
        "aria-current": app.view === view ? "page" : null,
        onclick: () => show(view),
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
