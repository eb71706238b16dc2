// The web UI's sandbox lifecycle, audit and "not found" pages in Chromium (issue 20, point 1):
// Stop and Start on the sandbox page, no Send on a stopped sandbox, the audit page with its
// filters and relative times, and a 404 in the UI's style. Every page state passes axe and the
// 400 px check; screenshots go to artifacts/ui/.

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
const submit = (action) => harness.submit(page, action);

/** A call to the REST API as the admin: [status, parsed JSON or text]. */
const api = (method, path, body) => harness.api(base, adminKey, method, path, body);

const waitFor = (what, check, limitMs) => harness.waitFor(what, check, limitMs, 200);

const state = async (name) => (await api("GET", `/sandboxes/${name}`))[1].state;

describe("sandbox lifecycle, audit and 404 pages in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-lifecycle-"));
    const s = await harness.startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    const [status, body] = await api("POST", "/sandboxes", {
      name: "life-box",
      agent_credentials: [
        { kind: "claude", none: true },
        { kind: "codex", none: true },
      ],
    });
    assert.ok(status === 201 || status === 202, JSON.stringify(body));
    await waitFor("the sandbox to run", async () => (await state("life-box")) === "running");

    context = await harness.launchBrowser(tmp);
    page = await harness.watchedPage(context, base, outside, consoleErrors);
    await harness.signIn(page, base, adminKey);
  });

  after(async () => {
    if (base && adminKey) await api("DELETE", "/sandboxes/life-box").catch(() => {});
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("stops and starts a sandbox from its page; a stopped sandbox offers Start, not Send", async () => {
    await page.goto(`${base}/sandboxes/life-box`);
    assert.equal(await page.locator("#sandbox-state").innerText(), "running");
    assert.ok(await page.locator("#send").isVisible(), "Send on a running sandbox");
    assert.equal(await page.locator("#sandbox-start").count(), 0, "no Start on a running sandbox");
    assert.ok(await page.getByRole("link", { name: "Delete sandbox" }).isVisible());
    await checkPage("sandbox-running");

    await submit(() => page.getByRole("button", { name: "Stop", exact: true }).click());
    assert.equal(new URL(page.url()).pathname, "/sandboxes/life-box");
    assert.match(await page.getByRole("status").innerText(), /Sandbox life-box stopped\./);
    assert.equal(await page.locator("#sandbox-state").innerText(), "stopped");
    assert.equal(await state("life-box"), "stopped");
    assert.equal(await page.locator("#send").count(), 0, "no Send on a stopped sandbox");
    assert.equal(await page.locator("#message").count(), 0, "no message box on a stopped sandbox");
    assert.match(await page.locator("#not-running").innerText(), /stopped: start it with the Start button/);
    assert.doesNotMatch(await page.locator("main").innerText(), /amika sandbox start|--/, "no CLI command");
    assert.equal(await page.locator("#sandbox-stop").count(), 0, "no Stop on a stopped sandbox");
    await checkPage("sandbox-stopped");

    await submit(() => page.getByRole("button", { name: "Start", exact: true }).click());
    assert.match(await page.getByRole("status").innerText(), /Sandbox life-box is starting\./);
    // The page reloads itself while the sandbox starts; the message box is back once it runs.
    await page.locator("#send").waitFor({ state: "visible", timeout: 30_000 });
    assert.equal(await page.locator("#sandbox-state").innerText(), "running");
    assert.equal(await state("life-box"), "running");
  });

  it("shows the audit trail with relative times, filtered by action, object and name", async () => {
    await page.getByRole("link", { name: "Audit" }).click();
    await page.waitForURL(`${base}/audit`);
    assert.equal(await page.locator("h1").innerText(), "Audit");
    const rows = page.locator("tbody tr");
    assert.ok((await rows.count()) >= 3, "created, stopped and started events");
    const first = rows.first();
    assert.match(await first.locator("td").nth(0).innerText(), /^(just now|\d+ min ago)$/);
    assert.match(await first.locator("time").getAttribute("title"), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    await checkPage("audit");

    await page.getByLabel("Action").selectOption("sandbox.stopped");
    await submit(() => page.getByRole("button", { name: "Apply" }).click());
    assert.equal(new URL(page.url()).searchParams.get("action"), "sandbox.stopped");
    const actions = await page.locator("tbody tr td:nth-child(2)").allInnerTexts();
    assert.deepEqual(actions, ["sandbox.stopped"]);
    assert.match(await page.locator("tbody tr").first().innerText(), /life-box/);
    assert.equal(await page.getByLabel("Action").inputValue(), "sandbox.stopped", "the filter is kept");

    await page.getByLabel("Action").selectOption("");
    await page.getByLabel("Name or id contains").fill("no-such-object");
    await submit(() => page.getByRole("button", { name: "Apply" }).click());
    assert.match(await page.locator(".empty").innerText(), /No event matches these filters/);
    await checkPage("audit-filtered-empty");
  });

  it("answers an unknown path with a page in the UI's style, and the API with JSON", async () => {
    const response = await page.goto(`${base}/no/such/page`);
    assert.equal(response.status(), 404);
    assert.equal(await page.locator("h1").innerText(), "Page not found");
    assert.match(await page.locator("main").innerText(), /There is no page at \/no\/such\/page/);
    assert.ok(await page.getByRole("navigation", { name: "Main" }).isVisible(), "inside the signed-in frame");
    assert.equal(response.headers()["content-security-policy"]?.includes("default-src 'self'"), true);
    await checkPage("not-found");

    const r = await fetch(`${base}/api/v0beta1/no-such-route`, { headers: { accept: "text/html" } });
    assert.equal(r.status, 404);
    assert.equal((await r.json()).code, "not_found");
    const plain = await fetch(`${base}/no/such/page`);
    assert.equal(plain.status, 404);
    assert.match(plain.headers.get("content-type"), /application\/json/, "a client that asks for no page gets JSON");
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
