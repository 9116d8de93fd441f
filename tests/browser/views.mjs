// Every view of the page at a phone's width (390 px) and at two desktop widths (1280,
// 1920): nothing scrolls sideways, the header fits one line, the world's stories are
// on the first screen of a phone, and axe-core finds no serious or critical
// accessibility problem. A job streams in, its progress moving with the text and
// announced in a live region. At 1280 px it takes the README's pictures of the world,
// the story editor and a job streaming (see `PICTURES`).
//
// Usage: node views.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set, against a stack whose offline model writes slowly enough
// to watch (`--llm-offline-pace`). tests/e2e/browser.rs runs it.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
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

const { base, admin } = settings("views.mjs");
// The laptop first: its pictures show the world before any job changed it.
const WIDTHS = [
  { name: "laptop", width: 1280, height: 900 },
  { name: "phone", width: 390, height: 844 },
  { name: "desktop", width: 1920, height: 1080 },
];
/** Where the README's pictures go: FABULA_PICTURES, else beside the failure shots. */
const PICTURES = process.env.FABULA_PICTURES ?? "/tmp/fabula-browser-pictures";
const WORLD = "Eldoria";
const STORY = "The Crossing";
const TEXT =
  "Mira Vale sailed from Port Sorrow to the Silver Lake in the Age of Embers. There she met Tomas Reed, " +
  "a ferryman who had not spoken to anyone since the flood.\n\nAt dusk the ferry turned back toward the harbour, " +
  "and Mira asked him why the lake had no name on the old maps.";
const TABS = ["Stories", "Characters & things", "Places", "Timeline", "AI jobs", "Settings & sharing"];

await run("every view at every width", async ({ newPage, step }) => {
  step("a writer with a world of some size, and model access, is made through the API");
  const { username, token } = await writerWithModelAccess(base, admin, "viewer");
  const world = await made("POST", "/v1/worlds", {
    name: WORLD,
    description: "An archipelago of slow ferries, where every island keeps its own calendar.",
  });
  for (const [title, content] of [
    [STORY, TEXT],
    ["Before the Crossing", "Port Sorrow slept under a grey sky."],
    ["The Flood", "The water rose in the Third Age and took the lower town."],
  ]) {
    await made("POST", `/v1/worlds/${world.id}/stories`, { title, content });
  }
  for (const [name, entityType, description] of [
    ["Mira Vale", "character", "A sailor who maps lakes nobody names."],
    ["Tomas Reed", "character", "A ferryman of few words and a long memory of the flood that took his village."],
    ["The Lantern", "object", ""],
  ]) {
    await made("POST", `/v1/worlds/${world.id}/entities`, {
      name,
      entityType,
      description,
      attributes: { "first seen": STORY },
    });
  }
  for (const [name, description] of [
    ["Port Sorrow", "A harbour town of grey stone."],
    ["Silver Lake", "A lake without a name on the old maps."],
  ]) {
    await made("POST", `/v1/worlds/${world.id}/locations`, { name, description });
  }
  for (const [title, year, era] of [
    ["The flood", 1200, "Third Age"],
    ["The ferry's last crossing", 1250, "Age of Embers"],
    ["A ferryman is born", 0, ""],
  ]) {
    await made("POST", `/v1/worlds/${world.id}/events`, { title, year, era, description: `${title}.` });
  }
  mkdirSync(PICTURES, { recursive: true });

  for (const size of WIDTHS) {
    const viewport = { width: size.width, height: size.height };
    const page = await newPage(`writer-${size.name}`, { viewport });
    const check = (what) => fitsAndIsAccessible(page, `${what} at ${size.width} px`);

    step(`${size.name} (${size.width} px): the sign-in screen`);
    await page.goto(base);
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    await check("the sign-in screen");

    step(`${size.name}: the list of worlds, and the header on one line`);
    await logIn(page, username);
    await page.getByText(`Signed in as ${username}`).waitFor();
    await check("the list of worlds");
    const header = await page.locator("header.topbar").boundingBox();
    assert.ok(header.height <= 64, `the header is one line high at ${size.width} px (${header.height} px)`);

    step(`${size.name}: the world, each of its tabs`);
    await page
      .getByRole("link", { name: new RegExp(WORLD) })
      .first()
      .click();
    await page.getByRole("heading", { name: WORLD, level: 2 }).waitFor();
    await page.locator(".story-list li").first().waitFor();
    if (size.name === "phone") {
      const first = await page.locator(".story-list li").first().boundingBox();
      assert.ok(
        first.y + first.height <= size.height,
        `the first story is on the first screen (its bottom at ${first.y + first.height} px)`,
      );
    }
    for (const tab of TABS) {
      await page.getByRole("tab", { name: tab }).click();
      await page.locator(`[role=tab][aria-selected=true]`).getByText(tab).waitFor();
      await check(`the ${tab} tab`);
    }

    step(`${size.name}: the story editor`);
    await page.getByRole("tab", { name: "Stories" }).click();
    if (size.width === 1280) await page.screenshot({ path: `${PICTURES}/world.png` });
    await page.getByRole("link", { name: STORY, exact: true }).click();
    await page.getByLabel("Story text").waitFor();
    await check("the story editor");
    if (size.width === 1280) await page.locator(".story-editor").screenshot({ path: `${PICTURES}/story-editor.png` });

    step(`${size.name}: a job streams in, its progress moving with the text`);
    await page.getByRole("tab", { name: "AI jobs" }).click();
    await page.getByLabel("Job", { exact: true }).selectOption("describeWorld");
    await page.evaluate(() => {
      window.progressSeen = [];
      new MutationObserver(() => {
        const card = document.querySelector("section.job");
        const bar = card?.querySelector("progress");
        const written = card?.querySelector("pre.output")?.textContent.length ?? 0;
        if (bar && card.dataset.state === "RUNNING") window.progressSeen.push([Number(bar.value), written]);
      }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await page.getByRole("button", { name: "Start job" }).click();
    await page.locator('section.job[data-state="RUNNING"] pre.output:not(:empty)').waitFor({ timeout: JOB_TIMEOUT });
    await check("a job streaming in");
    if (size.width === 1280) await page.locator("section.job").screenshot({ path: `${PICTURES}/job-streaming.png` });
    await page.locator('section.job[data-state="SUCCEEDED"]').waitFor({ timeout: JOB_TIMEOUT });
    const seen = await page.evaluate(() => window.progressSeen);
    const whileWriting = seen.filter(([, written]) => written > 0).map(([percent]) => percent);
    assert.ok(
      whileWriting.length > 1 && whileWriting.at(-1) > whileWriting[0],
      `the progress bar moved while the text came in: ${JSON.stringify(seen)}`,
    );
    const status = page.locator("section.job [role=status]");
    assert.match((await status.textContent()) ?? "", /^\d+% — [A-Z]/, "the progress line is a live region, in words");
    await check("a finished job");

    if (size.name === "laptop") {
      step("every control on the way is reached by Tab, and shows where the focus is");
      await page.locator("body").focus();
      const seen = new Set();
      for (let i = 0; i < 60; i += 1) {
        await page.keyboard.press("Tab");
        const focus = await page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return null;
          const style = getComputedStyle(el);
          const box = el.getBoundingClientRect();
          return {
            name: `${el.tagName.toLowerCase()} ${el.getAttribute("aria-label") ?? el.textContent.trim().slice(0, 30)}`,
            outlined: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
            shown: box.width > 0 && box.height > 0,
          };
        });
        if (!focus) continue;
        assert.ok(focus.shown && focus.outlined, `the focus on ${focus.name} is visible: ${JSON.stringify(focus)}`);
        seen.add(focus.name);
      }
      assert.ok(seen.size >= 12, `Tab went through the page's controls: ${[...seen].join(" | ")}`);

      step("a paraphrase is copied, then put into the story in place of its passage");
      await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
      const passage = "There she met Tomas Reed, a ferryman who had not spoken to anyone since the flood.";
      await page.getByLabel("Job", { exact: true }).selectOption("paraphrase");
      await page.getByLabel("Text to paraphrase").fill(passage);
      await page.getByText(`${(5000 - passage.length).toLocaleString("en-US")} characters left`).waitFor();
      await page.getByRole("button", { name: "Start job" }).click();
      await page
        .locator('section.job[data-state="SUCCEEDED"] .suggestions li')
        .first()
        .waitFor({ timeout: JOB_TIMEOUT });
      const rewording = (await page.locator(".suggestions li p").first().textContent()).trim();
      await page.getByRole("button", { name: "Copy rewording 1" }).click();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), rewording, "the rewording was copied");
      await page.getByLabel("Story to put rewording 1 into").selectOption({ label: STORY });
      await page.getByRole("button", { name: "Put rewording 1 into the chosen story" }).click();
      await waitForFlash(page, "The rewording replaced its passage: not saved yet.");
      const editor = page.getByLabel("Story text");
      const text = await editor.inputValue();
      assert.equal(text, TEXT.replace(passage, rewording), "the rewording took its passage's place");
      await page
        .locator("#save-status")
        .getByText(/^Saved/)
        .waitFor({ timeout: JOB_TIMEOUT });
      const stories = (await rest(base, "GET", `/v1/worlds/${world.id}/stories`, { token })).body.stories;
      const saved = (await rest(base, "GET", `/v1/stories/${stories.find((s) => s.title === STORY).id}`, { token }))
        .body;
      assert.equal(saved.content, text, "the story with the rewording saved itself after the pause");
    }

    await page.context().close();

    step(`${size.name}: the administrator's list of users`);
    const adminPage = await newPage(`admin-${size.name}`, { viewport });
    await adminPage.goto(base);
    await adminPage.getByLabel("Username or email").fill(admin.username);
    await adminPage.getByLabel("Password", { exact: true }).fill(admin.password);
    await adminPage.getByRole("button", { name: "Log in" }).click();
    await adminPage.getByRole("button", { name: "Admin" }).click();
    await adminPage.getByRole("heading", { name: "Users" }).waitFor();
    await fitsAndIsAccessible(adminPage, `the admin page at ${size.width} px`);
    await adminPage.context().close();
  }

  /** `method path` with `body` as the writer; the created resource. */
  async function made(method, path, body) {
    const answer = await rest(base, method, path, { token, body });
    assert.equal(answer.status, 201, `${method} ${path}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  }
});
