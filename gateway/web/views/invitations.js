// Invitations on the page: the signed-in user's pending ones, with Accept and
// Decline, above their worlds (views/worlds.js); and in a world's settings
// (views/world.js) the owner's form that invites by username or email address, with
// the invitations not answered yet and a Revoke button each.

import * as api from "/assets/api.js";
import { button, charactersLeft, field, fill, form, h, select, table, when } from "/assets/dom.js";
import { attempt, capitalized, say } from "/assets/page.js";

const ROLES = [
  ["READER", "Reader (reads everything)"],
  ["CO_AUTHOR", "Co-author (writes in it too)"],
];
const ROLE_NAMES = { CO_AUTHOR: "co-author", READER: "reader" };
/** InviteCollaboratorRequest.message's limit. */
const MESSAGE_MAX = 1000;

/** Whom an invitation is addressed to, as the inviter named them. */
const invitee = (invitation) => invitation.username ?? invitation.email ?? "";
const roleName = (role) => ROLE_NAMES[role] ?? role;

/**
 * The signed-in user's pending invitations, each with Accept and Decline; hidden while
 * there are none. `joined(worldId)` runs after an accept.
 */
export function myInvitations(joined) {
  const section = h("section", { id: "my-invitations", "aria-labelledby": "my-invitations-title", hidden: true });
  const reload = () =>
    attempt(async () => drawMine(section, await api.listAll("/v1/invitations", "invitations"), reload, joined));
  reload();
  return section;
}

function drawMine(section, invitations, reload, joined) {
  section.hidden = !invitations.length;
  const item = (invitation) =>
    h(
      "li",
      { class: "invitation" },
      h(
        "p",
        {},
        h("strong", {}, invitation.worldName),
        `: ${invitation.inviterUsername} invites you as ${roleName(invitation.role)}.`,
      ),
      invitation.message ? h("blockquote", {}, invitation.message) : null,
      h("p", { class: "meta" }, `Answer by ${when(invitation.expireTime)}`),
      h(
        "div",
        { class: "actions" },
        button("Accept", () => answer(invitation, "accept", reload, joined), {
          "aria-label": `Accept the invitation to ${invitation.worldName}`,
        }),
        button("Decline", () => answer(invitation, "decline", reload, joined), {
          class: "secondary",
          "aria-label": `Decline the invitation to ${invitation.worldName}`,
        }),
      ),
    );
  fill(
    section,
    h("h3", { id: "my-invitations-title", class: "list-title" }, "Invitations"),
    h("ul", { class: "plain" }, invitations.map(item)),
  );
}

async function answer(invitation, verb, reload, joined) {
  const path = `/v1/invitations/${invitation.id}/${verb}`;
  const done = await attempt(() => api.call("POST", path, { body: {} }));
  await reload();
  if (!done) return;
  if (verb === "decline") {
    say(`You declined the invitation to “${invitation.worldName}”.`);
    return;
  }
  say(`You joined “${invitation.worldName}” as ${roleName(invitation.role)}.`);
  await joined(invitation.worldId);
}

/** The owner's invitations to `world`: the form that sends one, and those not answered yet. */
export function worldInvitations(world) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading invitations…"));
  const path = `/v1/worlds/${world.id}/invitations`;
  const reload = () => attempt(async () => drawPending(list, await api.listAll(path, "invitations"), reload));
  const message = h("textarea", { name: "message", rows: 2 });
  const send = form(
    { "aria-label": "Invite to this world", class: "inline" },
    (values, el) =>
      attempt(async () => {
        const who = values.invitee.trim();
        const body = { role: values.role, message: values.message, [who.includes("@") ? "email" : "username"]: who };
        const sent = await api.call("POST", path, { body });
        el.reset();
        say(`Invitation sent to ${invitee(sent)} as ${roleName(sent.role)}.`);
        await reload();
      }),
    field(
      "Invite (username or email)",
      h("input", { name: "invitee", required: true, autocomplete: "off" }),
      "They join once they accept.",
    ),
    field("Role", select("role", ROLES, "READER")),
    field("Message (optional)", message, charactersLeft(message, MESSAGE_MAX)),
    h("button", { type: "submit" }, "Invite"),
  );
  reload();
  return h(
    "section",
    { class: "card", "aria-labelledby": "world-invitations-title" },
    h("h3", { id: "world-invitations-title" }, "Invitations"),
    list,
    send,
  );
}

function drawPending(list, invitations, reload) {
  if (!invitations.length) {
    fill(list, h("p", { class: "muted" }, "No invitation is waiting for an answer."));
    return;
  }
  const row = (invitation) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, invitee(invitation)),
      h("td", {}, capitalized(roleName(invitation.role))),
      h("td", {}, invitation.state === "EXPIRED" ? "Expired" : `Until ${when(invitation.expireTime)}`),
      h(
        "td",
        {},
        button("Revoke", () => revoke(invitation, reload), {
          class: "quiet",
          "aria-label": `Revoke the invitation to ${invitee(invitation)}`,
        }),
      ),
    );
  fill(list, table({}, null, ["Invited", "Role", "Answer", ""], invitations.map(row)));
}

async function revoke(invitation, reload) {
  if (!confirm(`Withdraw the invitation to ${invitee(invitation)}?`)) return;
  if (await attempt(() => api.call("POST", `/v1/invitations/${invitation.id}/revoke`, { body: {} }))) {
    say(`Invitation to ${invitee(invitation)} withdrawn.`);
  }
  await reload();
}
