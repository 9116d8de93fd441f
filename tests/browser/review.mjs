// Reviewing what the AI co-writer proposes, on the web page: an analysis started on
// the page ends in a proposal; the writer leaves one change out and renames one
// before accepting; a change that went stale meanwhile is named and nothing is
// applied; the world then holds exactly what was chosen, and undoing the job puts it
// back as it was.
//
// Usage: node review.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set (FABULA_VIEWPORT=phone for a phone's width).
// tests/e2e/browser.rs starts a stack with the offline model and runs it.

import assert from "node:assert/strict";
import {
  writerWithModelAccess,
  JOB_TIMEOUT,
  fitsAndIsAccessible,
  logIn,
  rest,
  run,
  settings,
  waitForFlash,
} from "./lib.mjs";

const { base, admin } = settings("review.mjs");
// The offline model finds two characters and a place in it (gpt-worker/src/llm/offline.rs).
const TEXT = "Mira Vale sailed to Port Sorrow. There she met Tomas Reed.";
const MIRA = "Add the character or thing “Mira Vale”";
const TOMAS = "Add the character or thing “Tomas Reed”";
const PORT = "Add the place “Port Sorrow”";

await run("reviewing a proposal", async ({ newPage, step, shot }) => {
  step("a writer with model access, a world and a story, made through the API");
  const { username, token } = await writerWithModelAccess(base, admin, "reviewer");
  const world = (await rest(base, "POST", "/v1/worlds", { token, body: { name: "Harbours" } })).body;
  const story = await rest(base, "POST", `/v1/worlds/${world.id}/stories`, {
    token,
    body: { title: "The Crossing", content: TEXT },
  });
  assert.equal(story.status, 201, JSON.stringify(story.body));
  const contents = async () => {
    const entities = (await rest(base, "GET", `/v1/worlds/${world.id}/entities`, { token })).body.entities ?? [];
    const places = (await rest(base, "GET", `/v1/worlds/${world.id}/locations`, { token })).body.locations ?? [];
    const linked = (await rest(base, "GET", `/v1/stories/${story.body.id}`, { token })).body;
    return {
      entities: entities.map((e) => e.name).sort(),
      places: places.map((l) => l.name).sort(),
      links: (linked.entityIds?.length ?? 0) + (linked.locationIds?.length ?? 0),
    };
  };
  const before = await contents();

  step("analyses the story from the page: the job ends with a proposal, nothing is written yet");
  const page = await newPage("writer");
  await page.goto(base);
  await logIn(page, username);
  await page.getByRole("link", { name: /Harbours/ }).click();
  await page.getByRole("tab", { name: "AI jobs" }).click();
  await page.getByLabel("Job", { exact: true }).selectOption("analyzeStory");
  await page.getByRole("button", { name: "Start job" }).click();
  await page.locator('section.job[data-state="SUCCEEDED"]').waitFor({ timeout: JOB_TIMEOUT });
  const review = page.getByRole("region", { name: "Proposed changes" });
  for (const label of [MIRA, TOMAS, PORT])
    assert.ok(await review.getByRole("checkbox", { name: label, exact: true }).isChecked(), `${label} is chosen`);
  assert.deepEqual(await contents(), before, "a proposal writes nothing");
  await fitsAndIsAccessible(page, "a proposal under review");
  await shot(page, "review");

  step("leaves Tomas Reed out and renames Mira Vale");
  const box = (label) => review.getByRole("checkbox", { name: label, exact: true });
  const miraName = review.getByRole("textbox", { name: `Proposed name: ${MIRA}` });
  await box(TOMAS).uncheck();
  await miraName.fill("Mira Vale the Elder");

  step("a place of the same name made meanwhile makes its change stale: it is named, nothing applied");
  const made = await rest(base, "POST", `/v1/worlds/${world.id}/locations`, { token, body: { name: "Port Sorrow" } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  await review.getByRole("button", { name: "Accept chosen" }).click();
  await waitForFlash(page, /Nothing was accepted.*Changed since: add the place “Port Sorrow”\./);
  await review.locator(".change.stale").getByText(PORT).waitFor();
  assert.deepEqual((await contents()).entities, before.entities, "nothing was applied");
  assert.equal(await box(PORT).isChecked(), false, "the stale change is left out");
  assert.equal(await box(TOMAS).isChecked(), false, "the writer's choice is kept");
  assert.equal(await miraName.inputValue(), "Mira Vale the Elder", "the writer's edit is kept");

  step("once the place is gone again, chooses it again and accepts");
  const removed = await rest(base, "DELETE", `/v1/locations/${made.body.id}`, { token });
  assert.ok(removed.status < 300, JSON.stringify(removed.body));
  await box(PORT).check();
  await review.getByRole("button", { name: "Accept chosen" }).click();
  // Mira Vale, Port Sorrow, and the story's links to them (Tomas Reed's link went with him).
  await waitForFlash(page, "Accepted: 4 changes made in the world.");
  await review.getByText("Accepted", { exact: true }).first().waitFor();
  const after = await contents();
  assert.deepEqual(after.entities, ["Mira Vale the Elder"], "the renamed character only");
  assert.deepEqual(after.places, ["Port Sorrow"], "the place");
  assert.equal(after.links, 2, "the story links what was accepted, not what was left out");
  const declined = review.locator(".change", { hasText: TOMAS }).getByText("Declined");
  await declined.waitFor();
  assert.equal(await review.getByRole("checkbox").count(), 0, "a decided proposal reads only");
  await fitsAndIsAccessible(page, "a decided proposal");
  await shot(page, "accepted");

  step("undoes the job: the world is as before");
  await page.getByRole("button", { name: "Undo this job" }).click();
  await waitForFlash(page, /^Undone: .* put back\. Nothing was skipped\./);
  await page.getByText("This job was undone.").waitFor();
  assert.deepEqual(await contents(), before, "the world is as it was before the job");

  step("runs the analysis again, finds it waiting for review, and rejects all of it");
  await page.getByRole("button", { name: "Start job" }).click();
  await page.locator('section.job[data-state="SUCCEEDED"]').waitFor({ timeout: JOB_TIMEOUT });
  const waiting = page.getByRole("button", { name: /^Review Characters and places of .The Crossing./ });
  await waiting.waitFor();
  await review.getByRole("button", { name: "Reject all" }).click();
  await waitForFlash(page, "The proposal was rejected: nothing was changed.");
  await page.getByText("Nothing waits for your review.").waitFor();
  assert.equal(await review.getByText("Declined").count(), 6, "each change reads as declined");
  assert.equal(await page.getByRole("button", { name: "Undo this job" }).count(), 0, "nothing to undo");
  assert.deepEqual(await contents(), before, "a rejected proposal changes nothing");
});
