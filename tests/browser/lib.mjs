// What the browser scenarios share: the command line, Debian's Chromium launched
// headless, pages that fail the run on script errors or CSP violations, the REST API
// for what happens behind the page's back, a runner that screenshots failures, and
// the checks every view passes: no sideways scroll, and axe-core's accessibility rules.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

export const TIMEOUT = 15_000;
export const JOB_TIMEOUT = 60_000;
export const PASSWORD = "a long enough password";
const SHOTS = "/tmp/fabula-browser";
/** The viewports a scenario may run at: a desktop's, and a phone's 390 px. */
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };
/** The viewport of a scenario that runs at one width: FABULA_VIEWPORT=phone or desktop. */
const DEFAULT_VIEWPORT = process.env.FABULA_VIEWPORT === "phone" ? PHONE : DESKTOP;

/** `node <script> <base URL>` with the administrator in FABULA_ADMIN_USERNAME/PASSWORD. */
export function settings(script) {
  const base = process.argv[2];
  const admin = { username: process.env.FABULA_ADMIN_USERNAME, password: process.env.FABULA_ADMIN_PASSWORD };
  if (!base || !admin.username || !admin.password) {
    console.error(`usage: FABULA_ADMIN_USERNAME=… FABULA_ADMIN_PASSWORD=… node ${script} <base URL>`);
    process.exit(2);
  }
  return { base, admin };
}

/** A username no earlier run used. */
export function newUsername(prefix) {
  return `${prefix}_${Date.now().toString(36)}`;
}

/** A new user, registered through the API and granted model access by the administrator `admin`. */
export async function writerWithModelAccess(base, admin, prefix) {
  const username = newUsername(prefix);
  const writer = await rest(base, "POST", "/v1/auth/register", {
    body: { username, email: `${username}@example.test`, password: PASSWORD },
  });
  assert.equal(writer.status, 200, JSON.stringify(writer.body));
  const adminLogin = await rest(base, "POST", "/v1/auth/login", {
    body: { login: admin.username, password: admin.password },
  });
  const granted = await rest(base, "PATCH", `/v1/admin/users/${writer.body.user.id}`, {
    token: adminLogin.body.accessToken,
    body: { gptEnabled: true },
  });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));
  return { username, token: writer.body.accessToken };
}

/** The REST API directly, as another client would use it. */
export async function rest(base, method, path, { token, body, query } = {}) {
  const url = `${base}${path}${query ? `?${new URLSearchParams(query)}` : ""}`;
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

export async function flashText(page) {
  return (await page.locator("#flash").textContent()) ?? "";
}

export async function waitForFlash(page, pattern) {
  await page.locator("#flash").getByText(pattern).waitFor({ timeout: TIMEOUT });
}

/**
 * Runs `scenario({ browser, newPage, step })` in a fresh headless Chromium; exits
 * non-zero, with screenshots of every page, if it throws or a page had a script error.
 * Pages accept confirm() dialogs.
 */
export async function run(name, scenario) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
  });
  const problems = [];
  const pages = [];
  let current = "starting";
  const step = (text) => {
    current = text;
    console.log(`• ${text}`);
  };
  // A page in a new browser context (of `viewport`: by default a desktop's, or a
  // phone's when FABULA_VIEWPORT=phone), or a new tab beside `besides` (sharing its
  // localStorage and clock, not its sessionStorage).
  const newPage = async (label, { besides, viewport = DEFAULT_VIEWPORT } = {}) => {
    const context = besides?.context() ?? (await browser.newContext({ viewport }));
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("dialog", (dialog) => dialog.accept());
    page.on("pageerror", (error) => problems.push(`${label}: uncaught ${error.message}`));
    page.on("console", (message) => {
      const text = message.text();
      // Chromium logs every 4xx answer as a console error; the page expects some.
      if (message.type() === "error" && !text.startsWith("Failed to load resource")) {
        problems.push(`${label}: console error: ${text}`);
      }
    });
    pages.push([label, page]);
    return page;
  };
  try {
    await scenario({
      browser,
      newPage,
      step,
      shot: (page, what) => page.screenshot({ path: `${SHOTS}-${what}.png`, fullPage: true }),
    });
    if (problems.length) throw new Error(`the page had script errors or CSP violations:\n  ${problems.join("\n  ")}`);
    console.log(`ok: ${name}: every step passed; screenshots in ${SHOTS}-*.png`);
  } catch (error) {
    console.error(`FAILED at "${current}": ${error.stack ?? error}`);
    if (problems.length) console.error(`page problems:\n  ${problems.join("\n  ")}`);
    for (const [label, page] of pages) {
      if (page.isClosed()) continue;
      console.error(`${label}'s flash: ${await flashText(page).catch(() => "?")}`);
      await page.screenshot({ path: `${SHOTS}-failure-${label}.png`, fullPage: true }).catch(() => {});
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/** Registers `username` on the page, which then shows them signed in. */
export async function register(page, base, username) {
  await page.goto(base);
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Email", { exact: true }).fill(`${username}@example.test`);
  await page.getByLabel("Choose a password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await waitForFlash(page, `Welcome to Fabula, ${username}`);
  await page.getByText(`Signed in as ${username}`).waitFor();
}

/** Logs `username` in on the login screen the page shows. */
export async function logIn(page, username) {
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
}

/** Creates a world on the page and opens it. */
export async function createWorld(page, name) {
  await page.getByRole("form", { name: "Create a world" }).getByLabel("World name").fill(name);
  await page.getByRole("button", { name: "Create world" }).click();
  await page.getByRole("heading", { name, level: 2 }).waitFor();
}

/** Fails when `page` scrolls sideways, naming the elements that stick out. */
export async function noSidewaysScroll(page, what) {
  const { scroll, width, wide } = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > width + 1)
      .slice(0, 8)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.className ? `.${el.className}` : ""}`);
    return { scroll: document.documentElement.scrollWidth, width, wide };
  });
  assert.ok(
    scroll <= width,
    `${what}: the page scrolls sideways (${scroll} px wide in ${width}); sticking out: ${wide}`,
  );
}

const AXE = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");

/** Both checks every view passes: no sideways scroll, and axe-core's (below). */
export async function fitsAndIsAccessible(page, what) {
  await noSidewaysScroll(page, what);
  await accessible(page, what);
}

/** Fails when axe-core finds a serious or critical accessibility problem on `page`. */
export async function accessible(page, what) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE);
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const grave = violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map(
      (v) =>
        `${v.impact} ${v.id}: ${v.help} (${v.nodes
          .map((n) => n.target.join(" "))
          .slice(0, 4)
          .join(", ")})`,
    );
  assert.deepEqual(grave, [], `${what}: axe-core found accessibility problems`);
}
