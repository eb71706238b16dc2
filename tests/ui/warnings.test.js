// Env vars that collide with what an agent credential injects, in headless Chromium against a
// real `amika server` and real bubblewrap sandboxes (issue 20, point 5): after a create whose
// secret lands in OPENAI_API_KEY beside a codex api_key credential and in ANTHROPIC_API_KEY
// beside a claude OAuth login, the sandbox's page keeps a Warnings section that names each
// variable and credential in plain words — not only the one-time notice of the create.
// Screenshots go to artifacts/ui/ (not committed).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";

let server, base, adminKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

const api = (method, path, body) => harness.api(base, adminKey, method, path, body);

const CODEX_WARNING =
  'Env var OPENAI_API_KEY (secret "my-openai") replaces the key of the codex credential "codex-key" that the sandbox reports';
const CLAUDE_WARNING =
  'Env var ANTHROPIC_API_KEY (secret "my-anthropic") is set beside the claude OAuth credential "claude-login": Claude Code uses the variable, not the OAuth login';

describe("collision warnings on the sandbox page in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-warnings-"));
    const s = await harness.startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    const login = { claudeAiOauth: { accessToken: "sk-ant-oat01-warnings", expiresAt: Date.now() + 86_400_000 } };
    await harness.createAll(base, adminKey, [
      ["/secrets/codex", { name: "codex-key", type: "api_key", value: "sk-proj-warnings-codex", is_default: true }],
      ["/secrets/claude", { name: "claude-login", type: "oauth", value: JSON.stringify(login), is_default: true }],
      ["/secrets", { name: "my-openai", value: "sk-proj-warnings-mapped" }],
      ["/secrets", { name: "my-anthropic", value: "sk-ant-api03-warnings-mapped" }],
    ]);
    context = await harness.launchBrowser(tmp);
    page = await harness.watchedPage(context, base, outside, consoleErrors);
    await harness.signIn(page, base, adminKey);
  });

  after(async () => {
    for (const name of ["clash-box", "calm-box"]) {
      if (base && adminKey) await api("DELETE", `/sandboxes/${name}`).catch(() => {});
    }
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("keeps a Warnings section on the sandbox page naming each variable and credential", async () => {
    await page.goto(`${base}/sandboxes/new`);
    await page.getByLabel("Sandbox name").fill("clash-box");
    await page.getByLabel("Env var").first().fill("OPENAI_API_KEY");
    await page.getByLabel("Secret", { exact: true }).first().selectOption("my-openai");
    await page.locator("#add-row").click();
    await page.getByLabel("Env var").nth(1).fill("ANTHROPIC_API_KEY");
    await page.getByLabel("Secret", { exact: true }).nth(1).selectOption("my-anthropic");
    await Promise.all([
      page.waitForURL(`${base}/sandboxes/clash-box`, { timeout: 30_000 }),
      page.getByRole("button", { name: "Create sandbox" }).click(),
    ]);
    await page.waitForLoadState("load");

    const warnings = page.locator("#warnings");
    assert.equal(await warnings.getByRole("heading").innerText(), "Warnings");
    assert.deepEqual((await warnings.locator("li").allInnerTexts()).sort(), [CLAUDE_WARNING, CODEX_WARNING].sort());
    // Near the top: above the conversation and the credential table it qualifies.
    const [top, table] = [await warnings.boundingBox(), await page.locator("#resolution-title").boundingBox()];
    assert.ok(top.y < table.y, "the warnings come before the credential table");
    await harness.checkPage(page, "sandbox-injection-warnings");

    // Not a one-time notice: still there on the next visit, when the create's notice is gone.
    await page.reload();
    assert.equal(await page.locator(".notice").count(), 0, "the create's notice was shown once");
    assert.deepEqual((await page.locator("#warnings li").allInnerTexts()).sort(), [CLAUDE_WARNING, CODEX_WARNING].sort());
    // The same words as the API's preview of that request (lower-case there).
    const [status, preview] = await api("POST", "/sandboxes/resolve-preview", {
      name: "x",
      secret_env_vars: { OPENAI_API_KEY: "my-openai", ANTHROPIC_API_KEY: "my-anthropic" },
      agent_credentials: [{ kind: "claude" }, { kind: "codex" }],
    });
    assert.equal(status, 200, JSON.stringify(preview));
    assert.deepEqual(
      preview.warnings.map((w) => w[0].toUpperCase() + w.slice(1)).sort(),
      [CLAUDE_WARNING, CODEX_WARNING].sort(),
    );
  });

  it("shows no Warnings section where nothing collides", async () => {
    const [status, body] = await api("POST", "/sandboxes", {
      name: "calm-box",
      secret_env_vars: { MY_OPENAI: "my-openai" },
      agent_credentials: [{ kind: "claude" }, { kind: "codex" }],
    });
    assert.ok(status === 201 || status === 202, JSON.stringify(body));
    assert.deepEqual(body.warnings ?? [], []);
    await page.goto(`${base}/sandboxes/calm-box`);
    assert.equal(await page.locator("#warnings").count(), 0);
    assert.equal(await page.getByText("collides").count(), 0);
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
