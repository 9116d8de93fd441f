// A writer's first session on Fabula's web page, in headless Chromium:
// registers, creates a world and a story, gets model access from an administrator
// (signed in in a second browser context), runs AnalyzeStory and watches its progress
// stream in, accepts what it proposes, finds the characters it found, edits the story through an edit conflict
// without losing a word, reorders stories, and logs out.
//
// Usage: node journey.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set. Exits 0 when every step passed; screenshots go to
// /tmp/fabula-browser-*.png. tests/e2e/browser.rs runs it against a fresh stack.

import assert from "node:assert/strict";
import {
  JOB_TIMEOUT,
  PASSWORD,
  createWorld,
  flashText,
  newUsername,
  register,
  rest,
  run,
  settings,
  waitForFlash,
} from "./lib.mjs";

const { base, admin } = settings("journey.mjs");
const username = newUsername("writer");
const password = PASSWORD;
// The offline model takes capitalised runs as characters, and those after `from`, `to`,
// `at`… as places.
const STORY = "Mira Vale sailed from Port Sorrow to the Silver Lake. There she met Tomas Reed, a ferryman.";
const CHARACTERS = ["Mira Vale", "Tomas Reed"];
const PLACES = ["Port Sorrow", "Silver Lake"];

await run("the writer's journey", async ({ newPage, step, shot }) => {
  const page = await newPage("writer");
  step("the page loads with its strict CSP and offers to log in or register");
  const response = await page.goto(base);
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
  await page.getByRole("heading", { name: "Create an account" }).waitFor();

  step(`a new user ${username} registers`);
  await register(page, base, username);

  step("an API error is shown with the API's message");
  await page.getByLabel("World name").fill(" ");
  await page.getByRole("button", { name: "Create world" }).click();
  await page.locator("#flash .error").waitFor();
  assert.match(await flashText(page), /Error: .*name/i, "the flash names the bad field");

  step("creates a world");
  await page.getByLabel("Description").fill("An archipelago of slow ferries.");
  await createWorld(page, "Eldoria");

  step("creates a story and writes it");
  await page.getByLabel("New story title").fill("The Crossing");
  await page.getByRole("button", { name: "Add story" }).click();
  await page.getByRole("heading", { name: "Editing “The Crossing”" }).waitFor();
  await page.getByLabel("Story text").fill(STORY);
  await page.getByRole("button", { name: "Save story" }).click();
  await waitForFlash(page, "Story “The Crossing” saved.");

  step("a reload keeps the session (the refresh token is traded for new tokens)");
  await page.reload();
  await page.getByText(`Signed in as ${username}`).waitFor();
  await page.getByRole("link", { name: /Eldoria/ }).click();
  await page.getByRole("heading", { name: "Eldoria", level: 2 }).waitFor();

  step("the administrator, in a second browser, grants model access on the admin panel");
  const adminPage = await newPage("admin");
  await adminPage.goto(base);
  await adminPage.getByLabel("Username or email").fill(admin.username);
  await adminPage.getByLabel("Password", { exact: true }).fill(admin.password);
  await adminPage.getByRole("button", { name: "Log in" }).click();
  await adminPage.getByRole("button", { name: "Admin" }).click();
  await adminPage.getByRole("button", { name: `Grant model access to ${username}` }).click();
  await adminPage.getByRole("button", { name: `Revoke model access from ${username}` }).waitFor();
  await waitForFlash(adminPage, `${username}: model access granted.`);
  await shot(adminPage, "admin");
  await adminPage.context().close();

  step("the writer runs AnalyzeStory and sees its progress stream in");
  await page.getByRole("tab", { name: "AI jobs" }).click();
  await page.getByRole("form", { name: "Start a job" }).waitFor();
  assert.equal(await page.getByText("You do not have model access yet").count(), 0, "the page knows about the grant");
  await page.getByLabel("Job", { exact: true }).selectOption("analyzeStory");
  await page.getByLabel("Story", { exact: true }).selectOption({ label: "The Crossing" });
  // Record, in order, each progress update and each state the job card shows.
  await page.evaluate(() => {
    window.jobTrace = [];
    new MutationObserver(() => {
      const card = document.querySelector("section.job");
      if (!card) return;
      const progress = card.querySelectorAll(".progress-log li").length;
      const last = window.jobTrace.at(-1);
      const entry = `${card.dataset.state}:${progress}`;
      if (last !== entry) window.jobTrace.push(entry);
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
  await page.getByRole("button", { name: "Start job" }).click();
  await page.locator('section.job[data-state="SUCCEEDED"]').waitFor({ timeout: JOB_TIMEOUT });
  const trace = await page.evaluate(() => window.jobTrace);
  console.log(`  job card states: ${trace.join(" → ")}`);
  const firstProgress = trace.findIndex((e) => !e.endsWith(":0"));
  const firstFinal = trace.findIndex((e) => e.startsWith("SUCCEEDED"));
  assert.ok(firstProgress >= 0 && firstProgress < firstFinal, "progress was shown before the job's final state");
  assert.ok((await page.locator(".progress-log li").count()) >= 2, "several progress updates were listed");
  const output = await page.getByLabel("Model output").textContent();
  assert.match(output, /Mira Vale/, "the model's output streamed into the page");
  await shot(page, "job");

  step("it proposes what it found; the writer accepts all of it");
  const review = page.getByRole("region", { name: "Proposed changes" });
  await review.getByRole("button", { name: "Accept chosen" }).waitFor();
  const proposed = await review.textContent();
  for (const name of [...CHARACTERS, ...PLACES]) assert.ok(proposed.includes(name), `it proposes ${name}: ${proposed}`);
  await review.getByRole("button", { name: "Accept chosen" }).click();
  await waitForFlash(page, /^Accepted: \d+ changes made in the world\./);

  step("the characters it found are listed in the world's entities, the places in its places");
  await page.getByRole("tab", { name: "Characters & things" }).click();
  for (const name of CHARACTERS) await page.locator("#entities-table").getByRole("rowheader", { name }).waitFor();
  await page.getByRole("tab", { name: "Places" }).click();
  for (const name of PLACES) await page.locator("#places-table").getByRole("rowheader", { name }).waitFor();

  step("edits the story while someone else changes it: the conflict is shown, the text kept");
  await page.getByRole("tab", { name: "Stories" }).click();
  await page.getByRole("link", { name: "The Crossing", exact: true }).click();
  await page.getByText("Characters and things: Mira Vale, Tomas Reed").waitFor();
  const mine = `${STORY}\n\nAt dusk the ferry turned back toward the harbour.`;
  // The same user, from another client, saves a different text first (before the
  // writer types here: the page saves by itself after a pause in typing).
  const login = await rest(base, "POST", "/v1/auth/login", { body: { login: username, password } });
  assert.equal(login.status, 200);
  const token = login.body.accessToken;
  const worlds = (await rest(base, "GET", "/v1/worlds", { token })).body.worlds;
  const world = worlds.find((w) => w.name === "Eldoria" && w.ownerId === login.body.user.id);
  const stories = (await rest(base, "GET", `/v1/worlds/${world.id}/stories`, { token })).body.stories;
  const storyId = stories.find((s) => s.title === "The Crossing").id;
  const before = await rest(base, "GET", `/v1/stories/${storyId}`, { token });
  const theirs = await rest(base, "PATCH", `/v1/stories/${storyId}`, {
    token,
    body: { content: "Someone else's version.", etag: before.body.etag },
  });
  assert.equal(theirs.status, 200, JSON.stringify(theirs.body));
  await page.getByLabel("Story text").fill(mine);
  await page.getByRole("button", { name: "Save story" }).click();
  const conflict = page.getByRole("alert").filter({ hasText: "changed by someone else" });
  await conflict.waitFor();
  assert.match(await conflict.textContent(), /changed since you read it/, "the API's message is shown");
  assert.equal(await page.getByLabel("Story text").inputValue(), mine, "the typed text is still in the editor");
  await shot(page, "conflict");
  await conflict.getByRole("button", { name: "Overwrite with my version" }).click();
  await waitForFlash(page, "Story “The Crossing” saved.");
  const saved = await rest(base, "GET", `/v1/stories/${storyId}`, { token });
  assert.equal(saved.body.content, mine, "the writer's text won, as they chose");
  assert.equal(saved.body.entityIds?.length, CHARACTERS.length, "the analysis's links were kept");

  step("orders the stories");
  await page.getByLabel("New story title").fill("Before the Crossing");
  await page.getByRole("button", { name: "Add story" }).click();
  await page.getByRole("heading", { name: "Editing “Before the Crossing”" }).waitFor();
  await page.getByRole("button", { name: "Move “Before the Crossing” up" }).click();
  await page.locator(".story-list li").first().getByText("Before the Crossing").waitFor();
  const order = (await rest(base, "GET", `/v1/worlds/${saved.body.worldId}/stories`, { token })).body.stories.map(
    (s) => s.title,
  );
  assert.deepEqual(order, ["Before the Crossing", "The Crossing"]);

  step("logs out: the refresh token is revoked and the page forgets it");
  const refreshToken = await page.evaluate(() => sessionStorage.getItem("fabula.refreshToken"));
  assert.ok(refreshToken, "the session's refresh token was kept for reloads");
  const watching = await page.context().cookies();
  assert.ok(
    watching.some((c) => c.name === "fabula_watch"),
    "watching the job set the watch cookie",
  );
  await page.getByRole("button", { name: "Log out" }).click();
  await waitForFlash(page, "You have logged out.");
  await page.getByRole("heading", { name: "Log in" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("fabula.refreshToken")), null);
  const reuse = await rest(base, "POST", "/v1/auth/refresh", { body: { refreshToken } });
  assert.equal(reuse.status, 401, `the logged-out refresh token no longer works: ${JSON.stringify(reuse.body)}`);
  const cookies = await page.context().cookies();
  assert.ok(
    !cookies.some((c) => c.name === "fabula_watch"),
    "the watch cookie, an access token, went with the session",
  );
  await shot(page, "end");
});
