// End-to-end tests of amika's web UI: a real `amika server` on port 0 with its own data dir,
// driven by Debian's Chromium (headless) through playwright-core. Screenshots of every page at
// 1280 px and 400 px go to artifacts/ui/ (not committed).
//
// Run: `npm ci && npm test` here (builds target/debug/amika first), or set AMIKA_BIN to use
// another build.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createHash } from "node:crypto";
import { join } from "node:path";
import * as harness from "./harness.js";

const { root } = harness;

const CLAUDE_OAUTH = JSON.stringify({
  claudeAiOauth: {
    accessToken: "sk-ant-oat01-ui-test-access",
    refreshToken: "sk-ant-ort01-ui-test-refresh",
    expiresAt: Date.now() + 365 * 24 * 3600 * 1000,
  },
});
const API_KEY_VALUE = "sk-ant-api03-ui-test-key";
const DB_VALUE = "postgres://app:hunter2-ui@db.internal/app";

// The test agent of the CLI's end-to-end tests (not the real Claude Code, which cannot reach its
// provider from here): it echoes the message and prints a SHA-256 of the credential it was given.
const FAKE_CLAUDE = readFileSync(join(root, "crates/cli/tests/fixtures/fake-claude.sh"), "utf8");
// Installed as `claude` in front of it: a message with "slow-reply" is answered after 2 s, so the
// page is seen waiting for it.
const SLOW_WRAPPER = `#!/bin/sh
# test wrapper around the test agent (fake-claude): delays the reply when asked to.
case "$*" in *slow-reply*) sleep 2 ;; esac
exec "$HOME/.local/bin/fake-claude" "$@"
`;

let server, base, adminKey, tmp, context, page;
let attacker, attackerOrigin = "none";
const outside = []; // requests to any host but the server
const consoleErrors = [];

const snap = (name) => harness.snap(page, name);
const submit = (action) => harness.submit(page, action);
const checkPage = (name) => harness.checkPage(page, name);

/** A bare repository under `root` (main, and `feature` one commit ahead) with a
 * `.amika/config.toml` and a setup script; its `file://` URL. */
function makeRepository(root) {
  const work = join(root, "repo-work");
  mkdirSync(join(work, ".amika"), { recursive: true });
  mkdirSync(join(work, "scripts"), { recursive: true });
  const git = (cwd, ...args) =>
    execFileSync("git", ["-c", "user.name=UI Test", "-c", "user.email=ui@test.invalid", ...args], { cwd, stdio: "pipe" });
  git(work, "init", "-q", "-b", "main");
  writeFileSync(join(work, ".amika", "config.toml"), '[env]\nNODE_ENV = "development"\n[lifecycle]\nsetup_script = "scripts/setup.sh"\n');
  writeFileSync(join(work, "scripts", "setup.sh"), "#!/bin/sh\necho repo setup\n");
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", "main");
  git(work, "checkout", "-q", "-b", "feature");
  writeFileSync(join(work, "README.md"), "feature\n");
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", "feature");
  git(root, "clone", "-q", "--bare", work, join(root, "repo.git"));
  return `file://${join(root, "repo.git")}`;
}


/** The cell texts of each body row of the table inside `scope`. */
async function tableRows(scope) {
  return scope.locator("tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.innerText.trim())),
  );
}

/** A call to the REST API as the admin: [status, parsed JSON or text]. */
const api = (method, path, body) => harness.api(base, adminKey, method, path, body);

/** Run a command in a sandbox through the API's exec endpoint; returns its exit code and output. */
async function sandboxExec(name, command) {
  const [status, text] = await api("POST", `/sandboxes/${name}/exec`, { command, timeout_secs: 30 });
  assert.equal(status, 200, String(text));
  const frames = String(text).trim().split("\n").map((l) => JSON.parse(l));
  const exit = frames.find((f) => f.stream === "exit");
  const output = frames.filter((f) => f.data !== undefined).map((f) => f.data).join("");
  return { code: exit?.code, output };
}

describe("amika web UI in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-"));
    const s = await harness.startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    context = await harness.launchBrowser(tmp);
    const origin = new URL(base).origin;
    context.on("request", (req) => {
      const url = new URL(req.url());
      // The one exception is the test's own cross-site page (see the CSRF test).
      if (url.origin !== origin && url.protocol !== "data:" && url.origin !== attackerOrigin) {
        outside.push(req.url());
      }
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(20_000);
    // Script errors and CSP refusals count; the browser's note on an expected 4xx page does not.
    page.on("console", (msg) => {
      if (msg.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) {
        consoleErrors.push(msg.text());
      }
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
  });

  after(async () => {
    attacker?.close();
    // Sandboxes outlive a server by design: a run that failed half-way deletes what it made.
    if (base && adminKey) {
      const auth = { authorization: `Bearer ${adminKey}` };
      const listed = await fetch(`${base}/api/v0beta1/sandboxes`, { headers: auth }).then((r) => r.json());
      for (const s of Array.isArray(listed) ? listed : []) {
        await fetch(`${base}/api/v0beta1/sandboxes/${s.id}`, { method: "DELETE", headers: auth });
      }
    }
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("redirects to sign-in and signs in with the keyboard only", async () => {
    await page.goto(`${base}/sandboxes`);
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.equal(new URL(page.url()).searchParams.get("next"), "/sandboxes");
    await checkPage("login");

    // The key field has the focus; type, Tab to the button, Enter.
    const focused = await page.evaluate(() => document.activeElement?.id);
    assert.equal(focused, "api_key");
    await page.keyboard.type("amk_not-a-real-key");
    await submit(() => page.keyboard.press("Enter"));
    assert.match(await page.locator("#api_key-error").innerText(), /not accepted/);
    assert.equal(await page.getByLabel("API key").inputValue(), "", "a rejected key is not echoed");
    await snap("login-error");

    await page.getByLabel("API key").focus();
    await page.keyboard.type(adminKey);
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Sign in");
    await Promise.all([page.waitForURL(`${base}/sandboxes`), page.keyboard.press("Enter")]);
    assert.equal(await page.locator("h1").innerText(), "Sandboxes");

    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === "amika_session");
    assert.ok(session, "session cookie set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.equal(session.path, "/");
    assert.ok(!session.value.includes(adminKey.slice(4, 16)), "the key is not in the cookie");
    assert.equal(await page.evaluate(() => document.cookie), "", "not readable from scripts");
    await checkPage("sandboxes-empty");
  });

  it("adds a secret and two claude credentials, listing them without values", async () => {
    await page.getByRole("link", { name: "Secrets" }).click();
    await page.waitForURL(`${base}/secrets`);
    await checkPage("secrets-empty");

    await page.getByLabel("Name", { exact: true }).fill("DATABASE_URL");
    await page.getByLabel("Value", { exact: true }).fill(DB_VALUE);
    assert.equal(await page.getByLabel("Value", { exact: true }).getAttribute("type"), "password");
    // Descriptions are free text: markup in one must show as text, never run.
    await page.getByLabel("Description (optional)").fill("<script>window.__pwned = 1</script> app database");
    await submit(() => page.getByRole("button", { name: "Add secret" }).click());
    assert.match(await page.getByRole("status").innerText(), /Secret DATABASE_URL added \(user scope\)/);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    const secretsCard = page.locator("section", { has: page.locator("#secrets-title") });
    const secretRows = await tableRows(secretsCard);
    assert.equal(secretRows.length, 1);
    assert.deepEqual(secretRows[0].slice(0, 5), [
      "DATABASE_URL",
      "<script>window.__pwned = 1</script> app database",
      "env",
      "user · only you",
      "1",
    ]);

    // Keyboard only: Name, Tab to Value, Enter submits.
    await page.getByLabel("Name", { exact: true }).focus();
    await page.keyboard.type("API_TOKEN");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "secret-value");
    await page.keyboard.type("tok-from-the-keyboard");
    await submit(() => page.keyboard.press("Enter"));
    assert.match(await page.getByRole("status").innerText(), /Secret API_TOKEN added/);

    // Credential 1: Claude OAuth JSON pasted into the textarea.
    await page.getByLabel("Kind", { exact: true }).selectOption("claude");
    await page.getByLabel("Credential name").fill("personal-oauth");
    await page.getByLabel("Type").selectOption("oauth");
    await page.getByLabel("OAuth credential JSON").fill(CLAUDE_OAUTH);
    await submit(() => page.getByRole("button", { name: "Add credential" }).click());
    assert.match(await page.getByRole("status").innerText(), /claude credential personal-oauth added \(oauth, user scope\)/);

    // Credential 2: an API key in the password field, marked default.
    await page.getByLabel("Kind", { exact: true }).selectOption("claude");
    await page.getByLabel("Credential name").fill("work-key");
    await page.getByLabel("Type").selectOption("api_key");
    await page.getByLabel("API key or token").fill(API_KEY_VALUE);
    await page.getByLabel("Use as my default of this kind").check();
    await submit(() => page.getByRole("button", { name: "Add credential" }).click());

    const credsCard = page.locator("section", { has: page.locator("#credentials-title") });
    const rows = (await tableRows(credsCard)).map((r) => r.slice(0, 5));
    rows.sort((a, b) => (a[1] < b[1] ? -1 : 1));
    assert.deepEqual(rows, [
      ["claude", "personal-oauth", "oauth", "user", ""],
      ["claude", "work-key", "api_key", "user", "default"],
    ]);
    const html = await page.content();
    for (const v of [DB_VALUE, API_KEY_VALUE, "sk-ant-oat01-ui-test-access", "tok-from-the-keyboard"]) {
      assert.ok(!html.includes(v), "no value on the page");
    }
    await checkPage("secrets");

    // A bad name is reported next to the name field; the value typed is kept by the page (the
    // server never writes it back).
    await page.getByLabel("Name", { exact: true }).fill("bad name");
    await page.getByLabel("Value", { exact: true }).fill("another-secret-value");
    await page.getByRole("button", { name: "Add secret" }).click();
    await page.locator("#secret-name-error").waitFor();
    assert.match(await page.locator("#secret-name-error").innerText(), /invalid secret name "bad name"/);
    assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), "bad name");
    assert.equal(await page.getByLabel("Value", { exact: true }).inputValue(), "another-secret-value");
    assert.equal(await page.locator("#secret-value-error").count(), 0, "no 'enter it again' once it is back");
    assert.ok(!(await page.content()).includes("another-secret-value"));
    await snap("secrets-error");
  });

  it("previews the resolution, shows a bad name next to its field, then creates the sandbox", async () => {
    await page.getByRole("link", { name: "New sandbox" }).first().click();
    await page.waitForURL(`${base}/sandboxes/new`);
    // Opening the form previews the defaults: claude's default credential, nothing for codex.
    const preview = page.locator("#preview");
    assert.deepEqual(await tableRows(preview), [
      ["claude", "resolved", "work-key", "api_key", "your default", "—"],
      ["codex", "skipped", "—", "—", "none found", "no stored credential"],
    ]);

    // Every agent select offers the same choices.
    const claude = page.getByLabel("claude credential");
    const codex = page.getByLabel("codex credential");
    assert.deepEqual(await claude.locator("option").allInnerTexts(), [
      "Default (auto)",
      "personal-oauth — oauth",
      "work-key — api_key · default",
      "Any oauth",
      "Any api_key",
      "None",
    ]);
    assert.deepEqual(await codex.locator("option").allInnerTexts(), [
      "Default (auto)",
      "Any oauth",
      "Any api_key",
      "None",
    ]);

    // Rows: add two with the button (script), remove one, map the first.
    await page.getByLabel("Env var").first().fill("DATABASE_URL");
    await page.getByLabel("Secret", { exact: true }).first().selectOption("DATABASE_URL");
    await page.getByRole("button", { name: "Add env var" }).click();
    assert.equal(await page.locator("[data-env-row]").count(), 2);
    assert.equal(
      await page.evaluate(() => document.activeElement?.name),
      "env",
      "the new row's field has the focus",
    );
    await page.locator("[data-env-row]").nth(1).getByLabel("Env var").fill("EXTRA");
    await page.locator("[data-env-row]").nth(1).getByRole("button", { name: /Remove/ }).click();
    assert.equal(await page.locator("[data-env-row]").count(), 1);

    await claude.selectOption({ label: "personal-oauth — oauth" });
    await codex.selectOption({ label: "None" });
    await submit(() => page.getByRole("button", { name: "Preview resolution" }).click());
    assert.deepEqual(await tableRows(page.locator("#preview")), [
      ["claude", "resolved", "personal-oauth", "oauth", "pinned by name", "—"],
      ["codex", "skipped", "—", "—", "none found", "you chose None"],
    ]);
    assert.deepEqual(await page.locator("#preview .mapping li").allInnerTexts(), ["DATABASE_URL ← DATABASE_URL (user scope)"]);
    await checkPage("new-sandbox-preview");

    // A bad name: the error sits next to the name field and nothing else is lost.
    await page.getByLabel("Sandbox name").fill("bad name!");
    await submit(() => page.getByRole("button", { name: "Create sandbox" }).click());
    const nameError = page.locator("#name-error");
    assert.match(await nameError.innerText(), /invalid sandbox name "bad name!"/);
    const name = page.getByLabel("Sandbox name");
    assert.equal(await name.getAttribute("aria-invalid"), "true");
    assert.equal(await name.getAttribute("aria-describedby"), "name-error");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "name", "focus on what to fix");
    // The message is right under its field.
    const [fieldBox, errorBox] = [await name.boundingBox(), await nameError.boundingBox()];
    assert.ok(errorBox.y >= fieldBox.y + fieldBox.height - 1 && errorBox.y - fieldBox.y < 80);
    assert.equal(await name.inputValue(), "bad name!");
    assert.equal(await page.getByLabel("Env var").first().inputValue(), "DATABASE_URL");
    assert.equal(await page.getByLabel("Secret", { exact: true }).first().inputValue(), "DATABASE_URL");
    assert.equal(await claude.inputValue(), "name:personal-oauth");
    assert.equal(await codex.inputValue(), "none");
    await checkPage("new-sandbox-error");

    await name.fill("dev-box");
    await Promise.all([
      page.waitForURL(`${base}/sandboxes/dev-box`, { timeout: 30_000 }),
      page.getByRole("button", { name: "Create sandbox" }).click(),
    ]);
    assert.equal(await page.locator("h1").innerText(), "dev-box");
    assert.match(await page.getByRole("status").innerText(), /Sandbox dev-box created/);
    assert.equal(await page.locator("#sandbox-state").innerText(), "running");
    const resolution = page.locator("section", { has: page.locator("#resolution-title") });
    assert.deepEqual(
      await resolution.locator("thead th").allInnerTexts(),
      ["KIND", "OUTCOME", "NAME", "TYPE", "SOURCE", "REASON"],
    );
    assert.deepEqual(await tableRows(resolution), [
      ["claude", "resolved", "personal-oauth", "oauth", "pinned by name", "—"],
      ["codex", "skipped", "—", "—", "none found", "you chose None"],
    ]);
    const injected = page.locator("section", { has: page.locator("#injected-title") });
    assert.deepEqual(await injected.locator("li").allInnerTexts(), ["DATABASE_URL ← DATABASE_URL (user scope, version 1)"]);
    await checkPage("sandbox-detail");

    await page.getByRole("link", { name: "Sandboxes" }).first().click();
    const list = await tableRows(page.locator("main"));
    assert.equal(list.length, 1);
    assert.deepEqual(list[0].slice(0, 4), ["dev-box", "running", "claude: personal-oauth\ncodex: none", "DATABASE_URL"]);
    await checkPage("sandboxes");
  });

  it("deletes the sandbox after a confirmation", async () => {
    await page.getByRole("link", { name: "dev-box" }).click();
    await page.getByRole("link", { name: "Delete sandbox" }).click();
    await page.waitForURL(`${base}/sandboxes/dev-box/delete`);
    assert.match(await page.locator("main").innerText(), /Delete the sandbox dev-box\?/);
    await checkPage("sandbox-delete-confirm");
    // Cancel goes back and deletes nothing.
    await page.getByRole("link", { name: "Cancel" }).click();
    await page.waitForURL(`${base}/sandboxes/dev-box`);
    await page.getByRole("link", { name: "Delete sandbox" }).click();
    await Promise.all([
      page.waitForURL(`${base}/sandboxes`, { timeout: 30_000 }),
      page.getByRole("button", { name: "Delete", exact: true }).click(),
    ]);
    assert.match(await page.getByRole("status").innerText(), /Sandbox dev-box deleted/);
    assert.match(await page.locator("main").innerText(), /No sandboxes yet/);
    const r = await page.request.get(`${base}/api/v0beta1/sandboxes/dev-box`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    assert.equal(r.status(), 404);
  });

  it("deletes a credential after a confirmation", async () => {
    await page.goto(`${base}/secrets`);
    await page.getByRole("link", { name: "Delete claude credential personal-oauth" }).click();
    assert.match(await page.locator("main").innerText(), /Delete the user claude credential personal-oauth \(oauth\)\?/);
    await checkPage("credential-delete-confirm");
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    await page.waitForURL(`${base}/secrets`);
    const credsCard = page.locator("section", { has: page.locator("#credentials-title") });
    assert.deepEqual((await tableRows(credsCard)).map((r) => r[1]), ["work-key"]);
  });

  it("creates a sandbox from a repository with env lines and a setup script, and shows its setup log", async () => {
    const url = makeRepository(tmp);
    await page.goto(`${base}/sandboxes/new`);
    await page.getByLabel("Sandbox name").fill("repo-box");
    await page.getByLabel("Repository URL").fill(url);
    await page.getByLabel("Branch", { exact: true }).fill("feature");
    const envLines = page.getByLabel("Variables, one KEY=VALUE per line");
    await envLines.fill("GREETING=hello <b>there</b>\nnot a variable");
    await page.getByLabel("Setup script", { exact: true }).fill('echo "setup ran: $GREETING / $NODE_ENV"');
    await page.getByLabel("Size", { exact: true }).selectOption("s");

    // The preview says what the repository's .amika/config.toml adds, and which script runs.
    await submit(() => page.getByRole("button", { name: "Preview resolution" }).click());
    assert.match(await page.locator("#env_vars-error").innerText(), /line 2: "not a variable" has no "="/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "env_vars", "focus on what to fix");
    assert.equal(await envLines.inputValue(), "GREETING=hello <b>there</b>\nnot a variable");
    assert.equal(await page.getByLabel("Repository URL").inputValue(), url);
    await checkPage("new-sandbox-repo-error");
    await envLines.fill("GREETING=hello <b>there</b>");
    await submit(() => page.getByRole("button", { name: "Preview resolution" }).click());
    assert.match(await page.locator("#preview-repo-config").innerText(), /NODE_ENV/);
    assert.match(await page.locator("#preview-repo-config").innerText(), /scripts\/setup\.sh/);
    assert.match(await page.locator("#preview-notes").innerText(), /your script runs before the sandbox is ready, instead of the repository's scripts\/setup\.sh/);
    await checkPage("new-sandbox-repo-preview");

    await Promise.all([
      page.waitForURL(`${base}/sandboxes/repo-box`, { timeout: 60_000 }),
      page.getByRole("button", { name: "Create sandbox" }).click(),
    ]);
    assert.equal(await page.locator("#sandbox-state").innerText(), "running");
    assert.equal(await page.locator("#sandbox-branch").innerText(), "feature");
    assert.equal(await page.locator("#sandbox-dir").innerText(), "~/workspace/repo");
    assert.equal(await page.locator("#setup-state").innerText(), "succeeded");
    assert.equal(
      await page.locator("#setup-log").innerText(),
      "setup ran: hello <b>there</b> / development\n[exit 0]\n",
    );
    const env = page.locator("section", { has: page.locator("#plain-env-title") });
    assert.deepEqual(await tableRows(env), [
      ["GREETING", "hello <b>there</b>", "request"],
      ["NODE_ENV", "development", ".amika/config.toml"],
    ]);
    await checkPage("sandbox-repo-detail");
    const [deleted] = await api("DELETE", "/sandboxes/repo-box");
    assert.ok(deleted < 300, `delete answered ${deleted}`);
  });

  it("sends messages to the test agent from the sandbox page and shows its redacted replies", async () => {
    // A sandbox whose claude gets the api key work-key (codex skipped), made through the API.
    const [created, sandbox] = await api("POST", "/sandboxes", {
      name: "agent-box",
      agent_credentials: [{ kind: "claude", name: "work-key" }, { kind: "codex", none: true }],
    });
    assert.ok(created === 201 || created === 202, JSON.stringify(sandbox));
    for (let i = 0; i < 200 && (await api("GET", "/sandboxes/agent-box"))[1].state !== "running"; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // Install the test agent (and the delaying wrapper) as the sandbox's `claude`; the scripts
    // travel as arguments, so no shell reads them.
    const install = await sandboxExec("agent-box", [
      "sh",
      "-c",
      'mkdir -p "$HOME/.local/bin" && printf "%s" "$1" > "$HOME/.local/bin/fake-claude" && printf "%s" "$2" > "$HOME/.local/bin/claude" && chmod 755 "$HOME/.local/bin/fake-claude" "$HOME/.local/bin/claude" && command -v claude',
      "install-test-agent",
      FAKE_CLAUDE,
      SLOW_WRAPPER,
    ]);
    assert.equal(install.code, 0, install.output);
    assert.match(install.output, /\/home\/amika\/.local\/bin\/claude/);

    await page.goto(`${base}/sandboxes/agent-box`);
    const box = page.locator("#agent-box");
    const message = page.getByLabel("Message", { exact: true });
    const agent = page.getByLabel("Agent", { exact: true });
    const newSession = page.getByLabel("New session");
    // The kind with a credential is chosen; the skipped one is shown, disabled, with why.
    assert.equal(await agent.inputValue(), "claude");
    assert.deepEqual(await agent.locator("option").allInnerTexts(), [
      "claude — work-key (api_key)",
      "codex — unavailable (skipped at create: no-agent-credential flag)",
    ]);
    assert.equal(await agent.locator("option[value=codex]").isDisabled(), true);
    assert.equal(await newSession.isChecked(), false);
    assert.match(await page.locator("#conversation").innerText(), /No messages yet/);

    // Nothing typed: the error sits under the message field, which takes the focus.
    await submit(() => box.getByRole("button", { name: "Send" }).click());
    assert.match(await page.locator("#message-error").innerText(), /message must not be empty/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "message");
    assert.equal(await message.getAttribute("aria-describedby"), "message-error");
    await checkPage("sandbox-agent-error");

    // A slow reply: the page comes back at once showing the message and a waiting reply, then
    // the reply replaces it in place (no reload; what is typed meanwhile stays).
    const first = "slow-reply: hello from the browser, echo-credential";
    await message.fill(first);
    await Promise.all([
      page.waitForURL(`${base}/sandboxes/agent-box#conversation`),
      box.getByRole("button", { name: "Send" }).click(),
    ]);
    await page.waitForLoadState("load");
    // No green "sent" notice above what may still fail; Send is off while the reply runs.
    assert.equal(await page.locator(".notice").count(), 0);
    assert.ok(await box.getByRole("button", { name: "Send" }).isDisabled(), "Send off while the agent answers");
    const conversation = page.locator("#conversation");
    assert.match(await conversation.innerText(), /Waiting for claude's reply/);
    assert.match(await conversation.innerText(), /stopped after 10 min at most/, "the deadline is stated");
    assert.equal(await message.inputValue(), "", "the sent message left the box");
    await snap("sandbox-agent-waiting");
    await page.evaluate(() => (window.__samePage = true));
    await message.fill("typed while waiting");
    await conversation.getByText("echo: slow-reply: hello from the browser").waitFor({ timeout: 20_000 });
    assert.equal(await page.evaluate(() => window.__samePage), true, "polled, not reloaded");
    assert.equal(await message.inputValue(), "typed while waiting");
    assert.equal(await page.locator("#conversation-status").innerText(), "The reply has arrived.");

    const keyHash = createHash("sha256").update(API_KEY_VALUE).digest("hex");
    const replies = () => conversation.locator(".bubble.agent .text").allInnerTexts();
    let texts = await replies();
    assert.equal(texts.length, 1);
    assert.match(texts[0], /^echo: slow-reply: hello from the browser, echo-credential\n/);
    assert.ok(texts[0].includes(`credential: env ANTHROPIC_API_KEY sha256=${keyHash}`), texts[0]);
    assert.ok(texts[0].includes("resumed: none"));
    // The agent printed its raw key; the page shows only its name.
    assert.ok(texts[0].includes("raw credential: [REDACTED:work-key]"), texts[0]);
    assert.ok(!(await page.content()).includes(API_KEY_VALUE), "no credential value on the page");
    const sessionId = await page.locator("#session-id").innerText();
    assert.match(sessionId, /^ses_/);

    // A follow-up from the keyboard (Ctrl+Enter) continues the same session.
    await message.fill("and a follow-up <b>not bold</b>");
    await Promise.all([page.waitForURL(`${base}/sandboxes/agent-box#conversation`), message.press("Control+Enter")]);
    await page.waitForLoadState("load");
    await conversation.getByText("echo: and a follow-up <b>not bold</b>").waitFor({ timeout: 20_000 });
    assert.equal(await page.locator("#session-id").innerText(), sessionId, "same session");
    assert.deepEqual(await conversation.locator(".bubble.you .text").allInnerTexts(), [
      first,
      "and a follow-up <b>not bold</b>",
    ]);
    assert.equal(await conversation.locator("b").count(), 0, "markup in a message stays text");
    texts = await replies();
    assert.equal(texts.length, 2);
    assert.doesNotMatch(texts[1], /resumed: none/, "the agent was asked to resume its conversation");
    assert.match(await conversation.locator(".session-meta").innerText(), /claude · credential work-key · 2 messages/);
    await checkPage("sandbox-agent");

    // A new session: the earlier one stays reachable from the page's list of sessions.
    await message.fill("a fresh start");
    await page.getByLabel("New session").check();
    await Promise.all([page.waitForURL(`${base}/sandboxes/agent-box#conversation`), box.getByRole("button", { name: "Send" }).click()]);
    await page.waitForLoadState("load");
    await conversation.getByText("echo: a fresh start").waitFor({ timeout: 20_000 });
    await page.reload();
    const sessions = page.getByRole("navigation", { name: "Sessions of this sandbox" });
    assert.equal(await sessions.getByRole("link").count(), 2);
    assert.notEqual(await page.locator("#session-id").innerText(), sessionId, "the latest is shown");
    await harness.submit(page, () => sessions.getByRole("link").nth(1).click());
    assert.equal(await page.locator("#session-id").innerText(), sessionId, "the earlier session, by its link");
    assert.match(await conversation.locator(".session-meta").innerText(), /an earlier session/);
    await checkPage("sandbox-agent-older-session");

    const [deleted] = await api("DELETE", "/sandboxes/agent-box");
    assert.ok(deleted < 300, `delete answered ${deleted}`);
  });

  it("refuses a form posted from another site, even with a stolen token", async () => {
    await page.goto(`${base}/secrets`);
    const token = await page.locator("input[name=_csrf]").first().inputValue();
    // Another site (localhost is not the same site as 127.0.0.1) that posts to amika at once.
    attacker = createServer((_, res) => {
      res.setHeader("content-type", "text/html");
      res.end(`<form id="f" method="post" action="${base}/secrets">
        <input name="_csrf" value="${token}"><input name="name" value="STOLEN">
        <input name="value" value="x"><input name="scope" value="user"></form>
        <script>document.getElementById("f").submit()</script>`);
    });
    await new Promise((r) => attacker.listen(0, "127.0.0.1", r));
    attackerOrigin = `http://localhost:${attacker.address().port}`;
    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${base}/secrets` && r.request().method() === "POST"),
      page.goto(`${attackerOrigin}/`),
    ]);
    assert.equal(posted.status(), 403);
    const sent = await posted.request().allHeaders();
    assert.equal(sent["cookie"], undefined, "SameSite=Strict: no session cookie on a cross-site post");
    const r = await page.request.get(`${base}/api/v0beta1/secrets`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    assert.ok(!(await r.text()).includes("STOLEN"), "nothing was created");
    attacker.close();
  });

  it("signs out; protected pages then redirect to sign-in", async () => {
    await page.goto(`${base}/sandboxes`);
    const [logout] = await Promise.all([
      page.waitForRequest((r) => r.url() === `${base}/logout`),
      page.getByRole("button", { name: "Sign out" }).click(),
    ]);
    // The same-site control for the CSRF test: here the browser does send the session cookie.
    assert.match((await logout.allHeaders())["cookie"] ?? "", /amika_session=/);
    await page.waitForURL(/\/login\?signed_out=1$/);
    assert.match(await page.getByRole("status").innerText(), /You are signed out/);
    assert.ok(!(await context.cookies(base)).some((c) => c.name === "amika_session"));
    for (const path of ["/secrets", "/sandboxes/new", "/sandboxes"]) {
      await page.goto(`${base}${path}`);
      assert.equal(new URL(page.url()).pathname, "/login", path);
      assert.equal(new URL(page.url()).searchParams.get("next"), path);
    }
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
