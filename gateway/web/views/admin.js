// The administrators' view: every account, with buttons to grant or revoke model
// access and to disable or enable the account.

import * as api from "/assets/api.js";
import { button, fill, h, table, words } from "/assets/dom.js";
import { app, attempt, main, say } from "/assets/page.js";

export async function renderAdmin() {
  const box = h("div", {}, h("p", { class: "muted" }, "Loading users…"));
  fill(
    main,
    h(
      "section",
      { class: "admin", "aria-labelledby": "admin-title" },
      h("h2", { id: "admin-title", tabindex: "-1" }, "Users"),
      h(
        "p",
        { class: "muted" },
        "Model access lets a user start AI jobs. A disabled user cannot sign in and their tokens stop working.",
      ),
      h("p", { id: "site-stats", class: "muted" }),
      box,
    ),
  );
  attempt(drawSiteStats);
  let users = [];
  if (!(await attempt(async () => (users = await api.listAll("/v1/admin/users", "users"))))) return;
  const row = (user) => {
    const self = user.id === app.me.id;
    return h(
      "tr",
      {},
      h("th", { scope: "row" }, user.username),
      h("td", {}, user.email ?? ""),
      h("td", {}, words(user.role)),
      h(
        "td",
        { class: "toggle" },
        h("span", {}, user.gptEnabled ? "Yes" : "No"),
        button(
          user.gptEnabled ? "Revoke model access" : "Grant model access",
          () => setUser(user, { gptEnabled: !user.gptEnabled }),
          {
            "aria-label": `${user.gptEnabled ? "Revoke model access from" : "Grant model access to"} ${user.username}`,
            class: user.gptEnabled ? "secondary" : null,
          },
        ),
      ),
      h(
        "td",
        {},
        self
          ? h("span", { class: "meta" }, "you")
          : button(
              user.disabled ? "Enable account" : "Disable account",
              () => setUser(user, { disabled: !user.disabled }),
              {
                "aria-label": `${user.disabled ? "Enable account" : "Disable account"} of ${user.username}`,
                class: user.disabled ? null : "quiet",
              },
            ),
      ),
    );
  };
  fill(
    box,
    table(
      { id: "users-table" },
      `${users.length} accounts`,
      ["Username", "Email", "Role", "Model access", "Account"],
      users.map(row),
    ),
  );
}

/** One line of the site's counts (GetSiteStats). */
async function drawSiteStats() {
  const stats = await api.call("GET", "/v1/admin/stats");
  const byVisibility = (c = {}) => `${c.total ?? 0} (${c.public ?? 0} public, ${c.draft ?? 0} drafts)`;
  fill(
    document.getElementById("site-stats"),
    `${stats.activeUsers} active and ${stats.disabledUsers} disabled accounts, ${stats.newUsersLast7Days} new this week · ` +
      `worlds ${byVisibility(stats.worlds)} · stories ${byVisibility(stats.stories)}`,
  );
}

async function setUser(user, fields) {
  if (await attempt(() => api.update(`/v1/admin/users/${user.id}`, fields))) {
    const changed = {
      gptEnabled: fields.gptEnabled ? "model access granted" : "model access revoked",
      disabled: fields.disabled ? "account disabled" : "account enabled",
    };
    say(`${user.username}: ${changed[Object.keys(fields)[0]]}.`);
    await renderAdmin();
  }
}
