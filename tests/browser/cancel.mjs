// Cancelling from the web page: with a model that never answers, a Paraphrase job
// started on the page stays RUNNING until the writer presses Cancel, and the page then
// shows it CANCELLED.
//
// Usage: node cancel.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set, against a stack whose model (--llm-base-url) never
// answers. tests/e2e/browser.rs starts such a stack and runs it.

import assert from "node:assert/strict";
import { createWorld, newUsername, register, rest, run, settings, waitForFlash } from "./lib.mjs";

const { base, admin } = settings("cancel.mjs");
const username = newUsername("canceller");

await run("cancelling a job", async ({ newPage, step, shot }) => {
  const page = await newPage("writer");
  step(`${username} registers and the administrator grants model access through the API`);
  await register(page, base, username);
  const login = await rest(base, "POST", "/v1/auth/login", {
    body: { login: admin.username, password: admin.password },
  });
  const me = (
    await rest(base, "GET", "/v1/admin/users", { token: login.body.accessToken, query: { pageSize: "200" } })
  ).body.users.find((u) => u.username === username);
  const granted = await rest(base, "PATCH", `/v1/admin/users/${me.id}`, {
    token: login.body.accessToken,
    body: { gptEnabled: true },
  });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));

  step("starts a Paraphrase job, which runs and waits for the model");
  await createWorld(page, "Slow Waters");
  await page.getByRole("tab", { name: "AI jobs" }).click();
  await page.getByLabel("Job", { exact: true }).selectOption("paraphrase");
  await page.getByLabel("Text to paraphrase").fill("The river was slow that year.");
  await page.getByLabel("Style").selectOption("vivid");
  await page.getByRole("button", { name: "Start job" }).click();
  await page.locator('section.job[data-state="RUNNING"]').waitFor();
  await page.locator("section.job .progress-log li").first().waitFor();

  step("cancels it from the page");
  await page.getByRole("button", { name: "Cancel job" }).click();
  await waitForFlash(page, "Asked to cancel the Paraphrase job.");
  await page.locator('section.job[data-state="CANCELLED"]').waitFor();
  await page.getByText("Cancelled: nothing more will be written for this job.").waitFor();
  assert.equal(await page.getByRole("button", { name: "Cancel job" }).isVisible(), false, "nothing left to cancel");
  await shot(page, "cancelled");
});
