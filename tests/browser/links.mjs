// Every view is a link, and everything is editable where it is shown, in headless
// Chromium at a desktop's width and at a phone's (390 px): the address follows the
// world, tab, story, character and event; a reload stays there; Back and Forward go
// through them. The story editor counts words and shows what is left of its limits.
// A character is edited in place (name, kind, description, attributes), a name
// already in the world is pointed out before saving, and after a DescribeWorld job
// the world's heading shows the new description. The timeline groups eras without
// regard to case, says "No year" for an event without one, and keeps the server's
// order.
//
// Usage: node links.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set. tests/e2e/browser.rs runs it against a fresh stack.

import assert from "node:assert/strict";
import {
  DESKTOP,
  JOB_TIMEOUT,
  PASSWORD,
  PHONE,
  createWorld,
  fitsAndIsAccessible,
  newUsername,
  register,
  rest,
  run,
  settings,
  waitForFlash,
} from "./lib.mjs";

const { base, admin } = settings("links.mjs");
const STORY = "Mira Vale sailed from Port Sorrow at dawn.\n\nThe harbour was quiet.";

/** The path the page shows. */
const pathOf = (page) => new URL(page.url()).pathname;

async function waitForPath(page, path) {
  await page.waitForURL((url) => url.pathname === path);
}

async function token(login, password = PASSWORD) {
  const answer = await rest(base, "POST", "/v1/auth/login", { body: { login, password } });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

await run("every view is a link", async ({ newPage, step, shot }) => {
  const adminToken = (await token(admin.username, admin.password)).accessToken;
  for (const [width, viewport] of [
    ["desktop", DESKTOP],
    ["phone", PHONE],
  ]) {
    const username = newUsername(`linker_${width}`);
    const worldName = `Harbour ${width}`;
    const page = await newPage(`writer-${width}`, { viewport });
    step(`${width}: ${username} registers and creates a world and a story`);
    await register(page, base, username);
    await createWorld(page, worldName);
    const worldPath = pathOf(page);
    assert.match(worldPath, /^\/worlds\/[0-9a-f-]{36}$/, "the world's address names it");
    const worldId = worldPath.split("/")[2];
    await page.getByLabel("New story title").fill("The Departure");
    await page.getByRole("button", { name: "Add story" }).click();
    await page.getByRole("heading", { name: "Editing “The Departure”" }).waitFor();
    assert.match(pathOf(page), new RegExp(`^${worldPath}/stories/[0-9a-f-]{36}$`), "the story's address");
    const storyPath = pathOf(page);

    step(`${width}: the editor counts words as they are written and shows the limits before they are hit`);
    const form = page.locator("#story-form");
    await form.getByText("187 characters left").waitFor();
    await page.getByLabel("Story text").fill(STORY);
    await page
      .locator("#story-count")
      .getByText(/^12 words · .* of the 1 MB a story may hold$/)
      .waitFor();
    await page.getByLabel("Title", { exact: true }).fill("The Departure at Dawn");
    await form.getByText("179 characters left").waitFor();
    await page.getByRole("button", { name: "Save story" }).click();
    await waitForFlash(page, "Story “The Departure at Dawn” saved.");

    step(`${width}: a reload stays in the story`);
    await page.reload();
    await page.getByRole("heading", { name: "Editing “The Departure at Dawn”" }).waitFor();
    assert.equal(await page.getByLabel("Story text").inputValue(), STORY);
    assert.equal(pathOf(page), storyPath);

    step(`${width}: characters are added; each opens at its own address, which a reload keeps`);
    await page.getByRole("tab", { name: "Characters & things" }).click();
    await waitForPath(page, `${worldPath}/characters`);
    const adding = page.getByRole("form", { name: "Add a character or thing" });
    for (const name of ["Mira Vale", "Tomas Reed"]) {
      await adding.getByLabel("Name").fill(name);
      await adding.getByRole("button", { name: "Add" }).click();
      await waitForFlash(page, `${name} added.`);
    }
    step(`${width}: a name already in the world is pointed out while adding`);
    await adding.getByLabel("Name").fill("mira vale ");
    await adding.getByText("This world already has a character or thing named “Mira Vale”.").waitFor();
    await adding.getByLabel("Name").fill("");

    await page.locator("#entities-table").getByRole("link", { name: "Mira Vale", exact: true }).click();
    const editing = page.getByRole("form", { name: "Edit Mira Vale" });
    await editing.waitFor();
    assert.match(pathOf(page), new RegExp(`^${worldPath}/characters/[0-9a-f-]{36}$`));
    const characterPath = pathOf(page);
    const href = await page.locator("#entities-table").getByRole("link", { name: "Mira Vale", exact: true });
    assert.equal(
      await href.getAttribute("href"),
      characterPath,
      "the name is a real link, to copy or open in a new tab",
    );
    await page.reload();
    await editing.waitFor();
    assert.equal(pathOf(page), characterPath);

    step(`${width}: Back and Forward go through the views`);
    await page.goBack();
    await waitForPath(page, `${worldPath}/characters`);
    await editing.waitFor({ state: "detached" });
    await page.locator("#entities-table").waitFor();
    await page.goBack();
    await waitForPath(page, storyPath);
    await page.getByRole("heading", { name: "Editing “The Departure at Dawn”" }).waitFor();
    await page.goForward();
    await waitForPath(page, `${worldPath}/characters`);
    await page.goForward();
    await waitForPath(page, characterPath);
    await editing.waitFor();

    step(`${width}: the character is edited where it is shown; a name in use is pointed out first`);
    await editing.getByLabel("Name").fill("tomas reed");
    await editing.getByText("This world already has a character or thing named “Tomas Reed”.").waitFor();
    await editing.getByLabel("Name").fill("Mira Vale-Sorrow");
    assert.equal(await editing.getByText(/already has/).isVisible(), false, "the hint goes with the clash");
    await editing.getByLabel("Kind").fill("captain");
    await editing.getByLabel("Description").fill("Captain of the slow ferry.");
    await editing.getByRole("button", { name: "Add an attribute" }).click();
    await editing.getByLabel("Attribute", { exact: true }).fill("age");
    await editing.getByLabel("Value", { exact: true }).fill("34");
    await shot(page, `character-${width}`);
    await fitsAndIsAccessible(page, `the character being edited at ${width}`);
    await editing.getByRole("button", { name: "Save changes" }).click();
    await waitForFlash(page, "Mira Vale-Sorrow saved.");
    await page.locator("#entities-table").getByRole("rowheader", { name: "Mira Vale-Sorrow" }).waitFor();
    const owner = await token(username);
    const entities = (await rest(base, "GET", `/v1/worlds/${worldId}/entities`, { token: owner.accessToken })).body
      .entities;
    const mira = entities.find((e) => e.name === "Mira Vale-Sorrow");
    assert.deepEqual(
      [mira.entityType, mira.description, mira.attributes],
      ["captain", "Captain of the slow ferry.", { age: "34" }],
    );

    step(`${width}: the timeline groups eras without case, says when there is no year, keeps one order`);
    const events = [
      { title: "The founding", era: "" },
      { title: "The storm", year: "3", era: "Unnamed Era" },
      { title: "The treaty", year: "5", era: "Age of Sail" },
      { title: "The mutiny", year: "7", era: "age of sail " },
    ];
    for (const body of events) {
      const made = await rest(base, "POST", `/v1/worlds/${worldId}/events`, { token: owner.accessToken, body });
      assert.equal(made.status, 201, JSON.stringify(made.body));
    }
    await page.getByRole("tab", { name: "Timeline" }).click();
    await waitForPath(page, `${worldPath}/timeline`);
    const eras = page.locator("#timeline section.era");
    await eras.first().waitFor();
    assert.deepEqual(await eras.locator("h4").allTextContents(), ["Unnamed era", "Age of Sail"]);
    assert.deepEqual(await eras.nth(0).locator("li").count(), 2, "no era and “Unnamed Era” are one");
    assert.equal(await eras.nth(0).locator("li .year").first().textContent(), "No year");
    assert.equal(await page.getByText("Year 0").count(), 0, "no “Year 0”");
    const shown = await page.locator("#timeline li a.link").allTextContents();
    const timeline = (await rest(base, "GET", `/v1/worlds/${worldId}/timeline`, { token: owner.accessToken })).body;
    const listed = (await rest(base, "GET", `/v1/worlds/${worldId}/events`, { token: owner.accessToken })).body;
    assert.deepEqual(shown, ["The founding", "The storm", "The treaty", "The mutiny"]);
    assert.deepEqual(
      timeline.eras.flatMap((era) => era.events.map((e) => e.title)),
      shown,
      "the page's order is the timeline's",
    );
    // The API groups eras without case too; an event without an era is its own run
    // there (the page names that one “Unnamed era”, and so joins it to “Unnamed Era”).
    assert.deepEqual(
      timeline.eras.map((era) => era.events.length),
      [1, 1, 2],
      "the API groups “Age of Sail” and “age of sail” as one",
    );
    assert.deepEqual(
      listed.events.map((e) => e.title),
      shown,
      "and the list's",
    );

    step(`${width}: an event opens at its own address and is edited there`);
    await page.locator("#timeline").getByRole("link", { name: "The storm", exact: true }).click();
    const event = page.getByRole("form", { name: "Edit The storm" });
    await event.waitFor();
    assert.match(pathOf(page), new RegExp(`^${worldPath}/events/[0-9a-f-]{36}$`));
    await page.reload();
    await fitsAndIsAccessible(page, `an event's own page at ${width}`);
    await event.getByLabel("Year").fill("");
    await event.getByLabel("Era").fill("UNNAMED ERA");
    await event.getByRole("button", { name: "Save changes" }).click();
    await waitForFlash(page, "The storm saved.");
    await page.locator("#timeline .year", { hasText: "Year 3" }).waitFor({ state: "detached" });
    assert.deepEqual(await eras.nth(0).locator("li .year").allTextContents(), ["No year", "No year"]);
    await shot(page, `timeline-${width}`);
    await fitsAndIsAccessible(page, `the timeline at ${width}`);

    step(`${width}: after a DescribeWorld job the world's heading shows the new description`);
    const me = (await rest(base, "GET", "/v1/users/me", { token: owner.accessToken })).body;
    const granted = await rest(base, "PATCH", `/v1/admin/users/${me.id}`, {
      token: adminToken,
      body: { gptEnabled: true },
    });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    await page.getByRole("tab", { name: "AI jobs" }).click();
    await waitForPath(page, `${worldPath}/jobs`);
    await page.getByLabel("Job", { exact: true }).selectOption("describeWorld");
    await page.getByRole("button", { name: "Start job" }).click();
    await page.locator('section.job[data-state="SUCCEEDED"]').waitFor({ timeout: JOB_TIMEOUT });
    assert.match(pathOf(page), new RegExp(`^${worldPath}/jobs/[0-9a-f-]{36}$`), "the job's address");
    await page.getByRole("region", { name: "Proposed changes" }).getByRole("button", { name: "Accept chosen" }).click();
    await waitForFlash(page, "Accepted: 1 change made in the world.");
    const described = (await rest(base, "GET", `/v1/worlds/${worldId}`, { token: owner.accessToken })).body;
    assert.ok(described.description, "the job wrote a description");
    await page.locator("#world-header .description").getByText(described.description.slice(0, 40)).waitFor();
    const jobPath = pathOf(page);
    await page.reload();
    await page.locator('section.job[data-state="SUCCEEDED"]').waitFor();
    assert.equal(pathOf(page), jobPath, "a reload shows the job again");
    const jobId = jobPath.split("/").at(-1);
    await page.goto(`${base}/jobs/${jobId}`);
    await page.getByRole("heading", { name: "AI job", level: 2 }).waitFor();
    await page.locator(`section.job[data-job-id="${jobId}"][data-state="SUCCEEDED"]`).waitFor();
    await page.goBack();
    await page.getByRole("heading", { name: worldName, level: 2 }).waitFor();
    assert.equal(pathOf(page), jobPath, "Back returns to the world's jobs");
    await page.context().close();
  }
});
