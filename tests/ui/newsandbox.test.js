// The New sandbox form in Chromium (issue 20, point 4): every error at once in plain words, a
// preview that follows the form without a reload (and stays, marked out of date, on an
// error), sources in words, and an expired credential never shown as a green "resolved".
// Every state passes axe and the 400 px check.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";

let server, base, adminKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

const checkPage = (name) => harness.checkPage(page, name);

/** A call to the REST API as the admin: [status, parsed JSON or text]. */
const api = (method, path, body) => harness.api(base, adminKey, method, path, body);

/** The cell texts of each row of the preview's resolution table. */
const previewRows = () =>
  page.locator("#preview tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.innerText.trim())),
  );

describe("the New sandbox form in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-new-"));
    const s = await harness.startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    await harness.createAll(base, adminKey, [
      ["/secrets/claude", { name: "work-key", type: "api_key", value: "sk-ant-api03-new-form", is_default: true }],
      [
        "/secrets/claude",
        {
          name: "old-login",
          type: "oauth",
          value: JSON.stringify({ claudeAiOauth: { accessToken: "sk-ant-oat01-x", expiresAt: Date.now() - 86_400_000 } }),
        },
      ],
      ["/secrets", { name: "DB_URL", value: "postgres://u:p@h/db" }],
    ]);
    context = await harness.launchBrowser(tmp);
    page = await harness.watchedPage(context, base, outside, consoleErrors);
    await harness.signIn(page, base, adminKey);
  });

  after(async () => {
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("updates the preview as the form changes, in words, and never shows an expired credential as green", async () => {
    await page.goto(`${base}/sandboxes/new`);
    assert.deepEqual((await previewRows())[0].slice(0, 5), ["claude", "resolved", "work-key", "api_key", "your default"]);
    // No reload from here on: this mark would be gone.
    await page.evaluate(() => (window.__samePage = true));

    await page.getByLabel("claude credential").selectOption({ label: "old-login — oauth" });
    await page.waitForFunction(() => document.querySelector("#preview tbody tr td:nth-child(3)")?.innerText.includes("old-login"));
    const [claude] = await previewRows();
    assert.deepEqual(claude.slice(0, 5), ["claude", "resolved, expired", "old-login", "oauth", "pinned by name"]);
    assert.match(claude[5], /expired/);
    const row = page.locator("#preview tbody tr").first();
    assert.equal(await row.locator(".outcome-resolved").count(), 0, "not the green badge");
    assert.equal(await row.locator(".badge.expired").count(), 1);
    assert.equal(await page.evaluate(() => window.__samePage), true, "the page was not reloaded");

    // A secret mapped: the preview lists it without a click.
    await page.getByLabel("Env var").first().fill("DATABASE_URL");
    await page.getByLabel("Secret", { exact: true }).first().selectOption("DB_URL");
    await page.waitForFunction(() => document.querySelector("#preview .mapping")?.innerText.includes("DATABASE_URL"));
    assert.deepEqual(await page.locator("#preview .mapping li").allInnerTexts(), ["DATABASE_URL ← DB_URL (user scope)"]);
    assert.equal(await page.evaluate(() => window.__samePage), true);
    await checkPage("new-sandbox-live-preview");

    // An error: the last preview stays, marked out of date, with the problem under it.
    await page.getByLabel("Sandbox name").fill("bad name!");
    await page.locator("#preview.stale .live-errors").waitFor();
    assert.match(await page.locator("#preview .live-errors").innerText(), /invalid sandbox name "bad name!"/);
    assert.ok(await page.locator("#preview table").isVisible(), "the last preview is still shown");
    await checkPage("new-sandbox-live-error");

    await page.getByLabel("Sandbox name").fill("fine-name");
    await page.waitForFunction(() => !document.querySelector("#preview")?.classList.contains("stale"));
    assert.equal(await page.locator("#preview .live-errors").count(), 0);
  });

  it("reports every error of a create at once, in plain words", async () => {
    await page.goto(`${base}/sandboxes/new`);
    await page.getByLabel("Sandbox name").fill("bad name!");
    await page.getByLabel("Env var").first().fill("1BAD");
    await page.getByLabel("Secret", { exact: true }).first().selectOption("DB_URL");
    await page.getByLabel("Variables, one KEY=VALUE per line").fill("NODE_ENV=dev\n=novar");
    await harness.submit(page, () => page.getByRole("button", { name: "Create sandbox" }).click());
    assert.match(await page.locator("#name-error").innerText(), /invalid sandbox name "bad name!"/);
    assert.match(await page.locator("#row-0-error").innerText(), /invalid env var name "1BAD": expected letters, digits and '_', not starting with a digit/);
    assert.ok(await page.locator("#env_vars-error").isVisible(), "the plain env error too");
    const text = await page.locator("main").innerText();
    for (const jargon of ["[A-Za-z", "secret_env_vars", "env_vars[", "--secret", "--env", "`", "amika secret"]) {
      assert.ok(!text.includes(jargon), `no ${jargon} in the page`);
    }
    assert.equal(await page.evaluate(() => document.activeElement?.id), "name", "focus on the first problem");
    assert.match(await page.locator("#preview").innerText(), /No preview until the errors marked on the form are fixed/);
    await checkPage("new-sandbox-all-errors");
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
