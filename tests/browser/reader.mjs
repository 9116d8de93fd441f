// Only what the person may do, in headless Chromium at a desktop's width and at a
// phone's (390 px): the owner invites from the world's settings and the invitee
// accepts on the page; a reader opening a shared link sees the story as text and the
// characters as details, with no inputs to type in, and is offered no AI job they
// cannot run; when the owner makes a co-author a reader while they write, or stops
// sharing, the page says so plainly. A link to a public world opens for a visitor who
// is not signed in; a link to a private one asks them to log in and goes there after.
//
// Usage: node reader.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set. tests/e2e/browser.rs runs it against a fresh stack.

import assert from "node:assert/strict";
import {
  DESKTOP,
  PASSWORD,
  PHONE,
  fitsAndIsAccessible,
  logIn,
  newUsername,
  register,
  rest,
  run,
  settings,
  waitForFlash,
} from "./lib.mjs";

const { base, admin } = settings("reader.mjs");
const STORY = "The lamp burned all night.\n\nAt dawn the keeper slept.";

async function call(method, path, token, body) {
  const answer = await rest(base, method, path, { token, body });
  assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

await run("only what the person may do", async ({ newPage, step, shot }) => {
  const adminToken = (await call("POST", "/v1/auth/login", null, { login: admin.username, password: admin.password }))
    .accessToken;
  for (const [width, viewport] of [
    ["desktop", DESKTOP],
    ["phone", PHONE],
  ]) {
    step(`${width}: an owner writes a private world with a story and a character, through the API`);
    const ownerName = newUsername(`owner_${width}`);
    const owner = await call("POST", "/v1/auth/register", null, {
      username: ownerName,
      email: `${ownerName}@example.test`,
      password: PASSWORD,
    });
    const token = owner.accessToken;
    const worldName = `Lighthouse ${width}`;
    const world = await call("POST", "/v1/worlds", token, {
      name: worldName,
      worldType: "MODERN",
      visibility: "PRIVATE",
    });
    const story = await call("POST", `/v1/worlds/${world.id}/stories`, token, {
      title: "The Long Night",
      content: STORY,
      visibility: "PUBLIC",
    });
    await call("POST", `/v1/worlds/${world.id}/entities`, token, { name: "The keeper", entityType: "character" });
    const storyPath = `/worlds/${world.id}/stories/${story.id}`;

    step(`${width}: the owner invites a reader from the world's settings; the reader accepts`);
    const readerName = newUsername(`reader_${width}`);
    const page = await newPage(`reader-${width}`, { viewport });
    await register(page, base, readerName);
    const reader = (await call("GET", "/v1/users/me", (await login(readerName)).accessToken)).id;
    const ownerPage = await newPage(`owner-${width}`, { viewport });
    await ownerPage.goto(`${base}/worlds/${world.id}/settings`);
    await logIn(ownerPage, ownerName);
    const invite = ownerPage.getByRole("form", { name: "Invite to this world" });
    await invite.getByLabel("Invite (username or email)").fill(readerName);
    await invite.getByLabel("Message (optional)").fill("Read the keeper's night?");
    await invite.getByRole("button", { name: "Invite" }).click();
    await waitForFlash(ownerPage, `Invitation sent to ${readerName} as reader.`);
    await ownerPage.getByRole("button", { name: `Revoke the invitation to ${readerName}` }).waitFor();
    await fitsAndIsAccessible(ownerPage, `the owner's invitations at ${width}`);
    await page.goto(`${base}/worlds`);
    const mine = page.locator("#my-invitations");
    await mine.getByText("Read the keeper's night?").waitFor();
    await fitsAndIsAccessible(page, `a pending invitation at ${width}`);
    await shot(page, `invitation-${width}`);
    await mine.getByRole("button", { name: `Accept the invitation to ${worldName}` }).click();
    await waitForFlash(page, `You joined “${worldName}” as reader.`);
    await page.getByRole("heading", { name: worldName, level: 2 }).waitFor();
    assert.ok(await mine.isHidden(), "no invitation is left to answer");
    await ownerPage.reload();
    await ownerPage.getByText("No invitation is waiting for an answer.").waitFor();
    await ownerPage.locator("table").getByRole("rowheader", { name: readerName }).waitFor();
    await ownerPage.context().close();

    step(`${width}: the reader opens the story's link: its text, and nothing to type in`);
    await page.goto(`${base}${storyPath}`);
    const text = page.locator("article.story-reader");
    await text.getByRole("heading", { name: "The Long Night" }).waitFor();
    assert.deepEqual(await text.locator(".story-text p").allTextContents(), [
      "The lamp burned all night.",
      "At dawn the keeper slept.",
    ]);
    assert.equal(await page.locator("#world-panel :is(input, textarea, select)").count(), 0, "no inputs at all");
    assert.equal(await page.getByRole("button", { name: "Save story" }).count(), 0);
    await shot(page, `reader-story-${width}`);
    await fitsAndIsAccessible(page, `a reader's story at ${width}`);

    step(`${width}: the reader sees a character's details, not a form`);
    await page.getByRole("tab", { name: "Characters & things" }).click();
    await page.locator("#entities-table").getByRole("link", { name: "The keeper", exact: true }).click();
    await page.locator(".item-card dl").getByText("character").waitFor();
    assert.equal(await page.locator("#world-panel :is(input, textarea)").count(), 0, "nothing to type in");
    assert.equal(await page.getByRole("button", { name: /^Delete/ }).count(), 0, "nothing to delete");
    await fitsAndIsAccessible(page, `a reader's character at ${width}`);

    step(`${width}: no AI job the reader cannot run is offered`);
    await page.getByRole("tab", { name: "AI jobs" }).click();
    await page.getByText("You do not have model access yet").waitFor();
    assert.equal(await page.getByRole("button", { name: "Start job" }).count(), 0);
    await call("PATCH", `/v1/admin/users/${reader}`, adminToken, { gptEnabled: true });
    await page.reload();
    await page.getByRole("button", { name: "Start job" }).waitFor();
    const kinds = await page.getByLabel("Job", { exact: true }).locator("option").allTextContents();
    assert.deepEqual(kinds, ["Paraphrase a text"], "a reader may only paraphrase");

    step(`${width}: made a co-author, the reader writes; made a reader again meanwhile, the page says so`);
    await call("POST", `/v1/worlds/${world.id}/shares`, token, { user: readerName, role: "CO_AUTHOR" });
    await page.getByRole("tab", { name: "Stories" }).click();
    await page.getByRole("link", { name: "The Long Night", exact: true }).click();
    await page.getByRole("heading", { name: "Editing “The Long Night”" }).waitFor();
    await call("POST", `/v1/worlds/${world.id}/shares`, token, { user: readerName, role: "READER" });
    await page.getByLabel("Story text").fill(`${STORY}\n\nA ship came.`);
    await page.getByRole("button", { name: "Save story" }).click();
    await waitForFlash(page, `You can now only read “${worldName}”`);
    await page.locator("article.story-reader").waitFor();
    assert.equal((await call("GET", `/v1/stories/${story.id}`, token)).content, STORY, "nothing was written");

    step(`${width}: the owner stops sharing: the page says so plainly`);
    await call("DELETE", `/v1/worlds/${world.id}/shares/${reader}`, token);
    await page.getByRole("tab", { name: "Timeline" }).click();
    await waitForFlash(page, `You can no longer open “${worldName}”: it was deleted, or is no longer shared with you.`);
    await page.getByRole("heading", { name: "Choose a world" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/worlds");
    await shot(page, `withdrawn-${width}`);
    await page.context().close();

    step(`${width}: a link to a public world opens for a visitor who is not signed in`);
    await call("PATCH", `/v1/worlds/${world.id}`, token, { visibility: "PUBLIC", etag: world.etag });
    const visitor = await newPage(`visitor-${width}`, { viewport });
    await visitor.goto(`${base}${storyPath}`);
    await visitor.locator("article.story-reader").getByRole("heading", { name: "The Long Night" }).waitFor();
    await visitor.getByRole("button", { name: "Log in or create an account" }).waitFor();
    assert.equal(await visitor.getByRole("tab", { name: "AI jobs" }).count(), 0, "no AI jobs for a visitor");
    assert.equal(await visitor.locator("#world-panel :is(input, textarea)").count(), 0);
    await fitsAndIsAccessible(visitor, `a public world, signed out, at ${width}`);

    step(`${width}: a link to a private world asks the visitor to log in, and goes there after`);
    const secret = await call("POST", "/v1/worlds", token, { name: `Secret ${width}`, visibility: "PRIVATE" });
    const secretPath = `/worlds/${secret.id}/characters`;
    await visitor.goto(`${base}${secretPath}`);
    await waitForFlash(visitor, "This world is not public: log in to open it");
    await visitor.getByRole("heading", { name: "Log in" }).waitFor();
    await logIn(visitor, ownerName);
    await visitor.getByRole("heading", { name: `Secret ${width}`, level: 2 }).waitFor();
    await visitor.getByRole("heading", { name: "Characters & things", level: 3 }).waitFor();
    assert.equal(new URL(visitor.url()).pathname, secretPath);
    await visitor.context().close();
  }
});

function login(username) {
  return call("POST", "/v1/auth/login", null, { login: username, password: PASSWORD });
}
