// SSH access from the sandbox page in Chromium (issue 15): the "SSH access" card, the command
// minted on request with its expiry, copied from the page and run with the real OpenSSH
// client, then revoked from the page. Every page state passes axe and the 400 px check;
// screenshots go to artifacts/ui/.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";

let server, base, adminKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

const api = (method, path, body) => harness.api(base, adminKey, method, path, body);

/** `ssh <destination> -- <command>` with no keys, agent or known hosts of the machine's. */
function ssh(destination, command) {
  const r = spawnSync(
    "ssh",
    [
      "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
      "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
      ...destination.split(/\s+/), "--", command,
    ],
    { env: { ...process.env, SSH_AUTH_SOCK: "" }, encoding: "utf8", timeout: 30_000 },
  );
  return { status: r.status, out: r.stdout };
}

describe("SSH access from the sandbox page in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-ssh-"));
    const s = await harness.startServer(join(tmp, "data"), ["--ssh-listen", "127.0.0.1:0"]);
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    const [status, body] = await api("POST", "/sandboxes", { name: "ssh-box" });
    assert.ok(status === 201 || status === 202, JSON.stringify(body));
    await harness.waitFor("the sandbox to run", async () => (await api("GET", "/sandboxes/ssh-box"))[1].state === "running");
    context = await harness.launchBrowser(tmp);
    page = await harness.watchedPage(context, base, outside, consoleErrors);
    await harness.signIn(page, base, adminKey);
  });

  after(async () => {
    if (base && adminKey) await api("DELETE", "/sandboxes/ssh-box").catch(() => {});
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("shows an ssh command with its expiry that logs in until revoked from the page", async () => {
    await page.goto(`${base}/sandboxes/ssh-box`);
    const card = page.getByRole("region", { name: "SSH access" });
    assert.ok(await card.isVisible());
    assert.match(await card.innerText(), /Host key SHA256:/);
    await harness.checkPage(page, "sandbox-ssh-card");

    await harness.submit(page, () => page.getByRole("button", { name: "Get an SSH command" }).click());
    const command = (await page.locator("#ssh-command").innerText()).trim();
    assert.match(command, /^ssh -p \d+ amkssh_[0-9a-f]{48}@127\.0\.0\.1$/);
    assert.match(await page.locator("#ssh-expiry").innerText(), /^Valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (59|60) minutes\)/);
    await harness.checkPage(page, "sandbox-ssh-command");

    const destination = command.replace(/^ssh /, "");
    assert.deepEqual(ssh(destination, "echo from-the-page"), { status: 0, out: "from-the-page\n" });

    await harness.submit(page, () => page.getByRole("button", { name: "Revoke now" }).click());
    assert.equal(new URL(page.url()).pathname, "/sandboxes/ssh-box");
    assert.match(await page.getByRole("status").innerText(), /revoked/);
    assert.equal(ssh(destination, "true").status, 255, "a revoked command logs in no more");
    assert.deepEqual(outside, [], "no request left the server");
    assert.deepEqual(consoleErrors, []);
  });
});
