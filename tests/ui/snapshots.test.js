// Snapshots in the web UI in Chromium (issue 16): from a sandbox with an injected secret, the
// capture page shows what a scrubbed snapshot leaves out (the env var's name, never its value,
// anywhere in the page), takes the snapshot, the Snapshots page lists it active, its "New
// sandbox" link starts a sandbox from it with the snapshot's files, and Delete (behind its
// confirm page) removes it. A full-mode capture without its confirmation box ticked is refused
// on the form, keeping what was typed. Every page state passes axe and the 400 px check;
// screenshots go to artifacts/ui/.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";

const VALUE = "tok-UI-SNAPSHOT-VALUE-0123456789";

let server, base, adminKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

const checkPage = (name) => harness.checkPage(page, name);
const submit = (action) => harness.submit(page, action);
const api = (method, path, body) => harness.api(base, adminKey, method, path, body);
const sh = (name, script) => harness.execText(base, adminKey, name, ["sh", "-c", script]);

/** A running sandbox `name` with the secret injected as SNAP_TOKEN and no agent credential. */
async function runningSandbox(name) {
  const [status, body] = await api("POST", "/sandboxes", {
    name,
    secret_env_vars: { SNAP_TOKEN: "snap-token" },
    agent_credentials: [
      { kind: "claude", none: true },
      { kind: "codex", none: true },
    ],
  });
  assert.ok(status === 201 || status === 202, JSON.stringify(body));
  await harness.waitFor(`${name} to run`, async () => (await api("GET", `/sandboxes/${name}`))[1].state === "running");
}

const snapshots = async () => (await api("GET", "/sandbox-snapshots"))[1].items;

/** The whole page as markup, the hidden parts included. */
const markup = () => page.content();

describe("snapshots in the web UI in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-snapshots-"));
    const s = await harness.startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    await harness.createAll(base, adminKey, [["/secrets", { name: "snap-token", value: VALUE }]]);
    await runningSandbox("ui-src");
    await runningSandbox("ui-full");
    await sh("ui-src", "echo prepared > ~/workspace/note.txt");
    context = await harness.launchBrowser(tmp);
    page = await harness.watchedPage(context, base, outside, consoleErrors);
    await harness.signIn(page, base, adminKey);
  });

  after(async () => {
    if (base && adminKey) {
      for (const name of ["ui-src", "ui-fork", "ui-full"]) await api("DELETE", `/sandboxes/${name}`).catch(() => {});
    }
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("captures a scrubbed snapshot from the sandbox page, lists it, starts a sandbox from it and deletes it", async () => {
    await page.goto(`${base}/snapshots`);
    assert.equal(await page.getByRole("link", { name: "Snapshots" }).getAttribute("aria-current"), "page");
    assert.match(await page.locator("#snapshots").innerText(), /No snapshots yet\./);
    await checkPage("snapshots-empty");

    // The sandbox page's "Snapshot…" leads to the capture page and its scrub preview.
    await page.goto(`${base}/sandboxes/ui-src`);
    await submit(() => page.getByRole("link", { name: "Snapshot…" }).click());
    assert.equal(new URL(page.url()).pathname, "/sandboxes/ui-src/snapshot");
    assert.deepEqual(await page.locator("#scrub-env li").allInnerTexts(), ["SNAP_TOKEN"]);
    assert.match(await page.locator("#scrub-files").innerText(), /No credential file was injected\./);
    assert.ok(!(await markup()).includes(VALUE), "the secret's value is nowhere in the capture page");
    assert.ok(await page.getByLabel("Scrub and delete (recommended)").isChecked(), "scrub is the default mode");
    assert.ok(!(await page.getByLabel("Full (unsafe)").isChecked()));
    await checkPage("snapshot-capture");

    await page.getByLabel("Snapshot name").fill("ui-snap");
    await page.getByLabel("Description").fill("prepared workspace");
    await submit(() => page.getByRole("button", { name: "Take snapshot" }).click());
    assert.equal(new URL(page.url()).pathname, "/snapshots");
    // The page reloads itself while the capture runs.
    await page.locator(".badge.snapshot-active").waitFor({ timeout: 60_000 });
    const row = page.locator("#snapshots tbody tr", { hasText: "ui-snap" });
    assert.match(await row.innerText(), /prepared workspace/);
    assert.match(await row.locator("td[data-label=Source]").innerText(), /ui-src/);
    assert.equal(await row.locator("td[data-label=Mode]").innerText(), "scrubbed");
    assert.match(await row.locator("td[data-label=Size]").innerText(), /^\d+(\.\d)? (B|KiB|MiB)$/);
    assert.match(await row.locator("td[data-label=Created]").innerText(), /just now|min ago/);
    assert.ok(!(await markup()).includes(VALUE), "the secret's value is nowhere in the list");
    await checkPage("snapshots-list");
    const [listed] = await snapshots();
    assert.equal(listed.snapshot, "ui-snap");
    assert.equal(listed.state, "active");
    await harness.waitFor("the scrubbed source to be deleted", async () => (await api("GET", "/sandboxes/ui-src"))[0] === 404);

    // "New sandbox" opens the form with the snapshot chosen, in the preview too.
    await submit(() => row.getByRole("link", { name: "New sandbox from snapshot ui-snap" }).click());
    assert.equal(new URL(page.url()).search, "?snapshot=ui-snap");
    assert.equal(await page.getByLabel("Start from snapshot").inputValue(), "ui-snap");
    assert.match(await page.locator("#preview-snapshot").innerText(), /Snapshot ui-snap, captured from ui-src/);
    await checkPage("snapshot-new-sandbox");
    await page.getByLabel("Sandbox name").fill("ui-fork");
    await submit(() => page.getByRole("button", { name: "Create sandbox" }).click());
    assert.equal(new URL(page.url()).pathname, "/sandboxes/ui-fork");
    assert.match(await page.locator("#sandbox-snapshot-name").innerText(), /ui-snap/);
    await harness.waitFor("the fork to run", async () => (await api("GET", "/sandboxes/ui-fork"))[1].state === "running", 60_000);
    assert.match(await sh("ui-fork", "cat ~/workspace/note.txt"), /prepared/);
    assert.match(await sh("ui-fork", "echo \"token:${SNAP_TOKEN:-none}\""), /token:none/, "the fork was given no secret");

    // Delete, behind its confirm page.
    await page.goto(`${base}/snapshots`);
    await submit(() => page.getByRole("link", { name: "Delete snapshot ui-snap" }).click());
    assert.match(await page.locator("main").innerText(), /Delete the snapshot ui-snap\?/);
    await checkPage("snapshot-delete");
    await submit(() => page.getByRole("button", { name: "Delete" }).click());
    assert.equal(new URL(page.url()).pathname, "/snapshots");
    assert.match(await page.getByRole("status").innerText(), /Snapshot ui-snap deleted\./);
    assert.match(await page.locator("#snapshots").innerText(), /No snapshots yet\./);
    assert.deepEqual(await snapshots(), []);
    assert.deepEqual(outside, [], "no request left the server");
    assert.deepEqual(consoleErrors, []);
  });

  it("refuses a full-mode capture whose confirmation box is not ticked, keeping what was typed", async () => {
    await page.goto(`${base}/sandboxes/ui-full/snapshot`);
    await page.getByLabel("Snapshot name").fill("full-snap");
    await page.getByLabel("Full (unsafe)").check();
    assert.match(await page.locator("#full-warning").innerText(), /Full mode captures secrets/);
    await submit(() => page.getByRole("button", { name: "Take snapshot" }).click());
    assert.equal(new URL(page.url()).pathname, "/sandboxes/ui-full/snapshot", "still on the form");
    assert.match(await page.locator("#confirm_full-error").innerText(), /tick this box to confirm/);
    assert.equal(await page.getByLabel("Snapshot name").inputValue(), "full-snap");
    assert.ok(await page.getByLabel("Full (unsafe)").isChecked(), "the mode is kept");
    assert.equal(await page.getByLabel(/I understand/).getAttribute("aria-invalid"), "true");
    assert.ok(!(await markup()).includes(VALUE));
    await checkPage("snapshot-full-unconfirmed");
    assert.deepEqual(await snapshots(), [], "nothing was captured");
    assert.equal((await api("GET", "/sandboxes/ui-full"))[1].state, "running");

    // Ticked, it goes through, and the sandbox is kept.
    await page.getByLabel(/I understand/).check();
    await submit(() => page.getByRole("button", { name: "Take snapshot" }).click());
    assert.equal(new URL(page.url()).pathname, "/snapshots");
    await page.locator(".badge.snapshot-active").waitFor({ timeout: 60_000 });
    const row = page.locator("#snapshots tbody tr", { hasText: "full-snap" });
    assert.equal(await row.locator("td[data-label=Mode]").innerText(), "full (may hold secrets)");
    assert.equal((await api("GET", "/sandboxes/ui-full"))[0], 200, "a full capture keeps its sandbox");
    assert.equal((await api("DELETE", "/sandbox-snapshots/full-snap"))[0], 200);
    assert.deepEqual(consoleErrors, []);
  });
});
