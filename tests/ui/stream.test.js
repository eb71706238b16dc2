// The agent message box streaming in headless Chromium, against a real `amika server` (port 0,
// its own data dir) and a real bubblewrap sandbox: a reply's text appears while the agent still
// works, before its answer, and Cancel stops a send that would never end. Screenshots go to
// artifacts/ui/ (not committed).
//
// The agent is the stand-in of the CLI's end-to-end tests (crates/cli/tests/fixtures/
// fake-claude.sh, a test script, not the real Claude Code): `simulate-slow` waits 3 s after its
// first text delta, `simulate-sleep` never ends, `echo-credential` prints its raw credential.
//
// Run: `npm ci && npm test` here (builds target/debug/amika first), or set AMIKA_BIN.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";
import { assertFitsNarrow, launchBrowser, root, snap, startServer, stopServer } from "./harness.js";

const FAKE_CLAUDE = readFileSync(join(root, "crates/cli/tests/fixtures/fake-claude.sh"), "utf8");
const API_KEY_VALUE = "sk-ant-api03-ui-stream-key-7f3e";

let server, base, adminKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

/** A call to the REST API as the admin: [status, parsed JSON or text]. */
const api = (method, path, body) => harness.api(base, adminKey, method, path, body);

const execText = (name, command) => harness.execText(base, adminKey, name, command);

/** Whether the stand-in's `sleep 297` runs in the sandbox. */
async function agentSleeping(name) {
  const text = await execText(name, ["sh", "-c", `for p in /proc/[0-9]*; do tr '\\0' ' ' < "$p/cmdline" 2>/dev/null; echo; done`]);
  return text.includes("sleep 297");
}

const waitFor = (what, check, limitMs) => harness.waitFor(what, check, limitMs, 100);

/** Type `message` into the box and send it; the page the browser comes back to. */
async function sendMessage(message) {
  await page.getByLabel("Message", { exact: true }).fill(message);
  await Promise.all([
    page.waitForURL(`${base}/sandboxes/stream-box#conversation`),
    page.locator("#agent-box").getByRole("button", { name: "Send" }).click(),
  ]);
  await page.waitForLoadState("load");
  await page.evaluate(() => (window.__samePage = true));
}

describe("the agent message box streams in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-stream-"));
    const s = await startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();

    let [status, body] = await api("POST", "/secrets/claude", { name: "work-key", type: "api_key", value: API_KEY_VALUE });
    assert.equal(status, 201, JSON.stringify(body));
    [status, body] = await api("POST", "/sandboxes", {
      name: "stream-box",
      agent_credentials: [{ kind: "claude", name: "work-key" }, { kind: "codex", none: true }],
    });
    assert.ok(status === 201 || status === 202, JSON.stringify(body));
    await waitFor("the sandbox to run", async () => (await api("GET", "/sandboxes/stream-box"))[1].state === "running");
    const installed = await execText("stream-box", [
      "sh",
      "-c",
      'mkdir -p "$HOME/.local/bin" && printf "%s" "$1" > "$HOME/.local/bin/claude" && chmod 755 "$HOME/.local/bin/claude"',
      "install-stand-in-agent",
      FAKE_CLAUDE,
    ]);
    assert.match(installed, /"stream":"exit","code":0/);

    context = await launchBrowser(tmp);
    const origin = new URL(base).origin;
    context.on("request", (req) => {
      const url = new URL(req.url());
      if (url.origin !== origin && url.protocol !== "data:") outside.push(req.url());
    });
    // What the conversation shows over time, with when: the streamed text, tool lines, the
    // final reply, and any element made from the agent's text (there must be none).
    await context.addInitScript(() => {
      window.__seen = [];
      const started = performance.now();
      const note = (what, text) => window.__seen.push({ what, text, at: performance.now() - started });
      document.addEventListener("DOMContentLoaded", () => {
        const conversation = document.getElementById("conversation");
        if (!conversation) return;
        new MutationObserver(() => {
          const pending = conversation.querySelector(".bubble.agent.pending");
          const streamed = pending?.querySelector(".stream")?.textContent;
          if (streamed) note("streamed", streamed);
          for (const tool of pending?.querySelectorAll(".stream .tool") ?? []) note("tool", tool.textContent);
          const reply = conversation.querySelector(".bubble.agent:not(.pending) .text");
          if (reply) note("reply", reply.textContent);
          if (conversation.querySelector(".turns b, .turns img")) note("markup", conversation.innerHTML);
        }).observe(conversation, { childList: true, subtree: true, characterData: true });
      });
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(20_000);
    page.on("console", (msg) => {
      if (msg.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) {
        consoleErrors.push(msg.text());
      }
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));

    await page.goto(`${base}/login`);
    await page.getByLabel("API key").fill(adminKey);
    await Promise.all([page.waitForURL(`${base}/sandboxes`), page.keyboard.press("Enter")]);
  });

  after(async () => {
    if (base && adminKey) await api("DELETE", "/sandboxes/stream-box").catch(() => {});
    await context?.close();
    await stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("shows the reply's text as it comes, before the answer, then the answer in place", async () => {
    await page.goto(`${base}/sandboxes/stream-box`);
    const message = "simulate-slow <b>not bold</b> echo-credential";
    await sendMessage(message);
    const conversation = page.locator("#conversation");
    const pending = conversation.locator(".bubble.agent.pending");
    assert.match(await page.locator("#conversation-status").innerText(), /^The reply is on its way/);
    const send = page.locator("#agent-box").getByRole("button", { name: "Send" });

    // The first delta ("echo: ") is on the page while the stand-in still waits its 3 s.
    await pending.locator(".stream .streamed").getByText("echo:").waitFor();
    assert.equal(await pending.count(), 1, "the reply is still pending");
    assert.equal(await send.isDisabled(), true, "no second message while a reply runs");
    assert.equal(await pending.getByRole("button", { name: "Cancel" }).count(), 1);
    await page.waitForFunction(() => /^[1-9]\d* s$/.test(document.querySelector(".elapsed")?.textContent ?? ""));
    await snap(page, "sandbox-agent-streaming");
    await assertFitsNarrow(page, "sandbox-agent-streaming");

    // Then the answer replaces the streamed text in place (no reload), and Send works again.
    await conversation.locator(".bubble.agent:not(.pending) .text").waitFor();
    await page.waitForFunction(() => document.getElementById("conversation-status")?.textContent === "The reply has arrived.");
    assert.equal(await page.evaluate(() => window.__samePage), true, "streamed, not reloaded");
    assert.equal(await send.isDisabled(), false);
    const reply = await conversation.locator(".bubble.agent .text").innerText();
    assert.ok(reply.startsWith(`echo: ${message}\n`), reply);
    assert.ok(reply.includes("raw credential: [REDACTED:work-key]"), reply);

    const seen = await page.evaluate(() => window.__seen);
    const first = seen.find((s) => s.what === "streamed");
    const answer = seen.find((s) => s.what === "reply");
    assert.ok(first && answer, JSON.stringify(seen));
    assert.ok(answer.at >= first.at + 2500, `streamed at ${first.at} ms, answered at ${answer.at} ms`);
    assert.ok(seen.some((s) => s.what === "tool" && s.text === "→ Bash: pwd"), "the tool call was shown");
    assert.ok(seen.some((s) => s.what === "streamed" && s.text.includes("[REDACTED:work-key]")), "the rest streamed too");
    assert.deepEqual(seen.filter((s) => s.what === "markup"), [], "the agent's text never became markup");
    assert.ok(!JSON.stringify(seen).includes(API_KEY_VALUE), "no credential value was shown");
    assert.ok(!(await page.content()).includes(API_KEY_VALUE));
  });

  it("Cancel stops a send that would never end, without a reload", async () => {
    await page.goto(`${base}/sandboxes/stream-box`);
    await sendMessage("simulate-sleep");
    const conversation = page.locator("#conversation");
    const cancel = conversation.locator(".bubble.agent.pending").getByRole("button", { name: "Cancel" });
    await cancel.waitFor();
    await waitFor("the agent to start", () => agentSleeping("stream-box"));
    assert.equal(await page.locator("#send").isDisabled(), true);

    await cancel.click();
    await page.waitForFunction(() => document.getElementById("conversation-status")?.textContent === "Cancelled: the agent was stopped.");
    assert.equal(await page.evaluate(() => window.__samePage), true, "cancelled in place, not reloaded");
    const failed = conversation.locator(".bubble.agent.error");
    assert.match(await failed.locator(".who").innerText(), /agent_cancelled/);
    assert.match(await failed.locator(".text").innerText(), /cancelled/);
    assert.equal(await conversation.locator(".bubble.agent.pending").count(), 0);
    assert.equal(await page.locator("#send").isDisabled(), false);
    assert.equal(await agentSleeping("stream-box"), false, "the agent was stopped");
    assert.equal(await page.locator("#conversation-status").innerText(), "Cancelled: the agent was stopped.");

    const [, latest] = await api("GET", "/sandboxes/stream-box/sessions/latest");
    assert.equal(latest.status, "cancelled");
    const [, session] = await api("GET", `/sandboxes/stream-box/sessions/${latest.id}`);
    const turn = session.transcript.at(-1);
    assert.equal(turn.message, "simulate-sleep");
    assert.equal(turn.error_code, "agent_cancelled");
    await snap(page, "sandbox-agent-cancelled");
    await assertFitsNarrow(page, "sandbox-agent-cancelled");
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
