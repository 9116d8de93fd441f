// Signing in with an OpenID Connect provider, in headless Chromium: the sign-in screen
// offers "Sign in with Fake" (the provider the stack was started with, the test kit's
// fake one, where the person `oidc_writer` signs in), the browser goes to the provider
// and comes back to /signin/oidc/fake, and the page signs in to the account that first
// sign-in created. A callback this tab did not start is refused and signs nobody in.
//
// Usage: node oidc.mjs <gateway base URL>, with FABULA_ADMIN_USERNAME and
// FABULA_ADMIN_PASSWORD set. tests/e2e/browser.rs runs it against a fresh stack.

import assert from "node:assert/strict";
import { fitsAndIsAccessible, run, settings, waitForFlash } from "./lib.mjs";

const { base } = settings("oidc.mjs");

await run("sign in with an OpenID Connect provider", async ({ newPage, step }) => {
  const page = await newPage("writer");
  step("the sign-in screen offers the provider");
  await page.goto(base);
  const signInWithFake = page.getByRole("button", { name: "Sign in with Fake" });
  await signInWithFake.waitFor();
  await fitsAndIsAccessible(page, "the sign-in screen with a provider");

  step("the provider sends the browser back, and the page signs in");
  await signInWithFake.click();
  await waitForFlash(page, "Welcome, oidc_writer");
  await page.getByText("Signed in as oidc_writer").waitFor();
  assert.equal(new URL(page.url()).pathname, "/worlds", "the callback's address is not kept");

  step("a callback this tab did not start is refused");
  const other = await newPage("stranger");
  await other.goto(`${base}/signin/oidc/fake?code=stolen&state=forged`);
  await waitForFlash(other, "This sign-in has expired or was used already");
  assert.equal(await other.getByText("Signed in as").count(), 0, "nobody is signed in");
});
