// Nothing typed is lost, in headless Chromium: the story editor saves after a pause in
// typing; when the session ends while the writer types, Save sends nothing, the page
// asks them to log in and then brings them back to the story with the text, which
// saves; when the story changed meanwhile both versions are shown and the writer
// chooses; an edit saved from another tab is shown as a conflict, never lost; and the
// world's settings keep what is typed across a reload. Deleting a story drops its draft.
//
// The session is ended the way it ends for a writer who left the page open: its
// refresh token no longer works (revoked here through the API), and a quarter of an
// hour passes on the page's clock, so the access token is due for renewal.
//
// Usage: node drafts.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set (unused). tests/e2e/browser.rs runs it against a fresh stack.

import assert from "node:assert/strict";
import {
  PASSWORD,
  createWorld,
  flashText,
  logIn,
  newUsername,
  register,
  rest,
  run,
  settings,
  waitForFlash,
} from "./lib.mjs";

const { base } = settings("drafts.mjs");
const username = newUsername("drafter");
const FIRST = "The lighthouse keeper counted ships.";
const SECOND = `${FIRST}\n\nThat night the lamp went out, and nobody saw why.`;
const THIRD = `${SECOND}\n\nShe climbed the stairs with a candle.`;
const THEIRS = "An editor's shorter version.";
const FROM_TAB = `${THEIRS} Changed in the other tab.`;
const MINE = `${THEIRS} Changed in this tab.`;

await run("nothing typed is lost", async ({ newPage, step, shot }) => {
  const page = await newPage("writer");
  await page.clock.install();
  const editor = page.getByLabel("Story text");
  const status = page.locator("#save-status");
  const draft = () =>
    page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith("fabula.draft.") && k.includes(".story."));
      return key ? JSON.parse(localStorage.getItem(key)) : null;
    });

  step(`${username} registers, creates a world and a story`);
  await register(page, base, username);
  await createWorld(page, "Driftwood");
  await page.getByLabel("New story title").fill("The Lighthouse");
  await page.getByRole("button", { name: "Add story" }).click();
  await page.getByRole("heading", { name: "Editing “The Lighthouse”" }).waitFor();
  const login = await rest(base, "POST", "/v1/auth/login", { body: { login: username, password: PASSWORD } });
  const token = login.body.accessToken;
  const world = (await rest(base, "GET", "/v1/worlds", { token })).body.worlds.find((w) => w.name === "Driftwood");
  const storyId = (await rest(base, "GET", `/v1/worlds/${world.id}/stories`, { token })).body.stories[0].id;
  const onServer = async () => (await rest(base, "GET", `/v1/stories/${storyId}`, { token })).body;

  step("types: the text is saved after a pause, without pressing Save");
  await editor.fill(FIRST);
  await status.getByText(/^Saved/).waitFor();
  assert.equal((await onServer()).content, FIRST, "the autosave reached the server");
  assert.equal(await draft(), null, "the saved draft is dropped");

  const endSession = async () => {
    const refreshToken = await page.evaluate(() => sessionStorage.getItem("fabula.refreshToken"));
    const revoked = await rest(base, "POST", "/v1/auth/logout", { body: { refreshToken } });
    assert.ok(revoked.status < 300, `the session's refresh token is revoked: ${JSON.stringify(revoked.body)}`);
    await page.clock.fastForward("16:00");
  };

  step("the session ends while the writer types; Save sends nothing and the page asks to log in");
  await endSession();
  await editor.fill(SECOND);
  await page.getByRole("button", { name: "Save story" }).click();
  await page.getByRole("heading", { name: "Log in" }).waitFor();
  const ended = await flashText(page);
  assert.match(ended, /session has ended/, ended);
  assert.match(ended, /kept in this browser/, ended);
  assert.doesNotMatch(ended, /access token/, "no protocol words");
  assert.equal((await draft())?.fields.content, SECOND, "the draft outlived the session");
  assert.equal((await onServer()).content, FIRST, "nothing was sent without a token");
  await shot(page, "session-ended");

  step("logs in again: back in the same story with the text, which saves");
  await logIn(page, username);
  await page.getByRole("heading", { name: "Editing “The Lighthouse”" }).waitFor();
  await waitForFlash(page, "back where you were");
  assert.equal(await editor.inputValue(), SECOND, "the text typed before the session ended is back");
  await status.getByText(/^Saved/).waitFor();
  assert.equal((await onServer()).content, SECOND, "and it was saved");
  assert.equal(await draft(), null);

  step("the session ends again, and someone changes the story before the writer is back: both are shown");
  await endSession();
  await editor.fill(THIRD);
  await page.getByRole("heading", { name: "Log in" }).waitFor();
  const before = await onServer();
  const edit = await rest(base, "PATCH", `/v1/stories/${storyId}`, {
    token,
    body: { content: THEIRS, etag: before.etag },
  });
  assert.equal(edit.status, 200, JSON.stringify(edit.body));
  await logIn(page, username);
  const conflict = page.getByRole("alert").filter({ hasText: "changed by someone else" });
  await conflict.waitFor();
  assert.equal(await editor.inputValue(), THIRD, "the writer's text is in the editor");
  assert.equal(await conflict.locator(".their-text").textContent(), THEIRS, "their text is shown beside it");
  assert.equal((await onServer()).content, THEIRS, "nothing was overwritten while the writer chose");
  await shot(page, "restored-conflict");

  step("takes theirs: the draft goes, the editor shows their version");
  await conflict.getByRole("button", { name: "Discard mine and load theirs" }).click();
  await page.getByRole("heading", { name: "Editing “The Lighthouse”" }).waitFor();
  assert.equal(await editor.inputValue(), THEIRS);
  assert.equal(await draft(), null);
  assert.equal((await onServer()).content, THEIRS);

  step("another tab saves the story while this one has it open: this tab shows the conflict");
  const tab = await newPage("other-tab", { besides: page });
  await tab.goto(base);
  await logIn(tab, username);
  await tab.getByRole("link", { name: /Driftwood/ }).click();
  await tab.getByRole("link", { name: "The Lighthouse", exact: true }).click();
  await tab.getByLabel("Story text").fill(FROM_TAB);
  await tab
    .locator("#save-status")
    .getByText(/^Saved/)
    .waitFor();
  assert.equal((await onServer()).content, FROM_TAB);
  await editor.fill(MINE);
  const clash = page.getByRole("alert").filter({ hasText: "changed by someone else" });
  await clash.waitFor();
  assert.equal(await editor.inputValue(), MINE, "this tab's text is kept");
  assert.equal(await clash.locator(".their-text").textContent(), FROM_TAB, "the other tab's text is shown");
  assert.match(await status.textContent(), /Not saved/);
  assert.equal((await onServer()).content, FROM_TAB, "the autosave did not overwrite the other tab's text");

  step("keeps mine: saved over the other tab's version");
  await clash.getByRole("button", { name: "Overwrite with my version" }).click();
  await waitForFlash(page, "Story “The Lighthouse” saved.");
  assert.equal((await onServer()).content, MINE);
  assert.equal(await draft(), null);
  await tab.close();

  step("the world's settings keep what is typed too: after a reload it is back, and saves");
  const description = "Grey coasts, one lamp, and the sea that keeps its secrets.";
  await page.getByRole("tab", { name: "Settings & sharing" }).click();
  await page.getByRole("form", { name: "World settings" }).getByLabel("Description").fill(description);
  await page.reload();
  // The reload lands on the world's settings, where it was.
  await page.getByRole("heading", { name: "Driftwood", level: 2 }).waitFor();
  await page.getByRole("tab", { name: "Settings & sharing" }).click();
  const settingsForm = page.getByRole("form", { name: "World settings" });
  assert.equal(await settingsForm.getByLabel("Description").inputValue(), description);
  await settingsForm.getByText(/^Restored what you typed/).waitFor();
  await page.getByRole("button", { name: "Save world" }).click();
  await waitForFlash(page, "World “Driftwood” saved.");
  const saved = (await rest(base, "GET", `/v1/worlds/${world.id}`, { token })).body;
  assert.equal(saved.description, description);
  const drafts = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("fabula.draft.")));
  assert.deepEqual(drafts, [], "the saved settings' draft is dropped");

  step("deletes the story straight after typing in it: the story and its draft go");
  await page.getByRole("tab", { name: "Stories" }).click();
  await page.getByRole("link", { name: "The Lighthouse", exact: true }).click();
  await editor.fill(`${MINE} One last line.`);
  await page.getByRole("button", { name: "Delete story" }).click();
  await waitForFlash(page, "Story “The Lighthouse” deleted.");
  assert.equal((await rest(base, "GET", `/v1/stories/${storyId}`, { token })).status, 404);
  assert.equal(await draft(), null);
});
