// The presets page in Chromium against a real server: a member sees the list without buttons;
// an admin installs the real `coder` preset from the page (npm into the server's own data dir,
// from the npm cache the tests share, so only a machine's first run downloads), sees it running,
// sees the result once the page has followed it, and removes it after the confirmation.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";

const pinned = JSON.parse(readFileSync(join(harness.root, "presets/coder.json"), "utf8"));

let server, base, adminKey, memberKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

async function signIn(key) {
  await page.goto(`${base}/login`);
  await page.getByLabel("API key").fill(key);
  await Promise.all([page.waitForURL(`${base}/sandboxes`), page.keyboard.press("Enter")]);
}

async function signOut() {
  await Promise.all([page.waitForURL(/\/login\?signed_out=1$/), page.getByRole("button", { name: "Sign out" }).click()]);
}

/** The cell texts of each body row of the first table inside `scope`. */
async function tableRows(scope) {
  return scope.locator("table").first().locator("tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.innerText.trim())),
  );
}

describe("the presets page in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-presets-"));
    const s = await harness.startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    const r = await fetch(`${base}/api/v0beta1/admin/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "dev", org: "default", is_admin: false }),
    });
    assert.equal(r.status, 201);
    memberKey = (await r.json()).api_key;
    context = await harness.launchBrowser(tmp);
    const origin = new URL(base).origin;
    context.on("request", (req) => {
      const url = new URL(req.url());
      if (url.origin !== origin && url.protocol !== "data:") outside.push(req.url());
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(20_000);
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
  });

  after(async () => {
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("shows a member the presets and their pinned packages, without buttons", async () => {
    await signIn(memberKey);
    await harness.submit(page, () => page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Presets" }).click());
    assert.equal(new URL(page.url()).pathname, "/presets");
    assert.equal(await page.locator("h1").innerText(), "Presets");
    const card = page.locator("#preset-coder");
    assert.equal(await card.locator("h2").innerText(), "coder");
    assert.deepEqual(
      await tableRows(card),
      Object.entries(pinned.packages).map(([pkg, version]) => [pkg, version, "no"]),
    );
    assert.match(await page.locator(".lead").innerText(), /Only admins install and remove presets/);
    assert.equal(await page.getByRole("button", { name: /Install/ }).count(), 0);
    assert.equal(await page.getByRole("link", { name: /Remove/ }).count(), 0);
    await harness.checkPage(page, "presets-member");
    await signOut();
  });

  it("lets an admin install coder, follows the install to its result, then removes it", async () => {
    await signIn(adminKey);
    await page.goto(`${base}/presets`);
    const card = page.locator("#preset-coder");
    assert.equal(await card.locator(".badge").innerText(), "not installed");
    await harness.checkPage(page, "presets");

    await harness.submit(page, () => page.getByRole("button", { name: "Install coder" }).click());
    assert.equal(new URL(page.url()).pathname, "/presets");
    assert.match(await page.locator(".notice").first().innerText(), /Installing coder: this page follows it/);
    const running = card.locator(".install-status[role=status]");
    assert.match(await running.innerText(), /Installing coder \(started by admin, .*\): step \d of 4/);
    assert.equal(await page.getByRole("button", { name: "Install coder" }).count(), 0, "no second install");
    await harness.checkPage(page, "presets-installing");

    // The page reloads itself every 2 s while the install runs.
    await card.getByText(/^Installed coder version/).waitFor({ timeout: 15 * 60_000 });
    assert.equal(await card.locator(".badge").innerText(), "installed");
    assert.deepEqual(
      await tableRows(card),
      Object.entries(pinned.packages).map(([pkg, version]) => [pkg, version, "yes"]),
    );
    const versions = await card.locator("table").nth(1).locator("tbody tr").count();
    assert.equal(versions, 1);
    await harness.checkPage(page, "presets-installed");

    await harness.submit(page, () => card.getByRole("link", { name: "Remove coder" }).click());
    assert.equal(await page.locator("h1").innerText(), "Remove preset");
    await harness.checkPage(page, "preset-remove-confirm");
    await harness.submit(page, () => page.getByRole("button", { name: "Delete" }).click());
    assert.equal(new URL(page.url()).pathname, "/presets");
    assert.match(await page.locator(".notice").first().innerText(), /^Removed coder version [0-9a-f]{12}\.$/);
    assert.equal(await card.locator(".badge").innerText(), "not installed");
    assert.equal(await page.getByRole("button", { name: "Install coder" }).count(), 1);
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
