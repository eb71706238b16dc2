// Agent sends that fail, in headless Chromium against a real `amika server` (port 0, its own
// data dir, an agent deadline of a few seconds from its config file) and real bubblewrap
// sandboxes (issue 20, points 2 and 6):
// - a send whose agent never answers is ended by the server's deadline, and the page says it
//   timed out: the elapsed time stops, Send works again; never "Waiting…" for ever;
// - in a sandbox with network `none`, an agent that cannot get out is said to have been unable
//   to reach its service, not to hold an expired credential, and no green notice sits above it.
//
// The agents are stand-ins, not the real CLIs: the CLI tests' fake-claude.sh (its
// `simulate-sleep` never ends), and a script that prints what the real Claude Code printed in
// a sandbox without a network (crates/server/src/service/agents/offline_outputs/claude.stdout)
// plus, on stderr, a line that reads like a refused login, as a confused agent may add.
// Screenshots go to artifacts/ui/ (not committed).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";

const FAKE_CLAUDE = readFileSync(join(harness.root, "crates/cli/tests/fixtures/fake-claude.sh"), "utf8");
const OFFLINE_STDOUT = readFileSync(join(harness.root, "crates/server/src/service/agents/offline_outputs/claude.stdout"), "utf8");
const OFFLINE_CLAUDE = `#!/bin/sh
# stand-in agent, not the real Claude Code: what it printed in a sandbox without a network
# (after its retries; 2 s here, so that the page sees the reply pending first)
sleep 2
cat "$HOME/.offline-claude.stdout"
echo "Invalid API key · Please run /login" >&2
exit 1
`;
/** The server's agent deadline in this test (its config file). */
const DEADLINE_SECS = 4;

let server, base, adminKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

const checkPage = (name) => harness.checkPage(page, name);
const api = (method, path, body) => harness.api(base, adminKey, method, path, body);
const waitFor = (what, check, limitMs) => harness.waitFor(what, check, limitMs, 100);

const exec = (name, command) => harness.execText(base, adminKey, name, command);

/** Create a running sandbox with the claude credential and install `script` as its claude
 * (and `files` beside it, in its home). */
async function sandboxWithAgent(name, network, script, files = {}) {
  const [status, body] = await api("POST", "/sandboxes", {
    name,
    network,
    agent_credentials: [{ kind: "claude", name: "work-key" }, { kind: "codex", none: true }],
  });
  assert.ok(status === 201 || status === 202, JSON.stringify(body));
  await waitFor("the sandbox to run", async () => (await api("GET", `/sandboxes/${name}`))[1].state === "running", 30_000);
  const install = 'mkdir -p "$HOME/.local/bin" && printf "%s" "$1" > "$HOME/.local/bin/claude" && chmod 755 "$HOME/.local/bin/claude"';
  assert.match(await exec(name, ["sh", "-c", install, "install", script]), /"stream":"exit","code":0/);
  for (const [file, text] of Object.entries(files)) {
    assert.match(await exec(name, ["sh", "-c", 'printf "%s" "$2" > "$HOME/$1"', "write", file, text]), /"code":0/);
  }
}

/** Type `message` and press Send on sandbox `name`'s page; the page it comes back to. */
async function send(name, message) {
  await page.goto(`${base}/sandboxes/${name}`);
  await page.getByLabel("Message", { exact: true }).fill(message);
  await Promise.all([
    page.waitForURL(`${base}/sandboxes/${name}#conversation`),
    page.locator("#agent-box").getByRole("button", { name: "Send" }).click(),
  ]);
  await page.waitForLoadState("load");
}

const status = () => page.locator("#conversation-status").innerText();

describe("agent sends that fail, in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-agentfail-"));
    const config = join(tmp, "server.json");
    writeFileSync(config, JSON.stringify({ agent_timeout_secs: DEADLINE_SECS }));
    const s = await harness.startServer(join(tmp, "data"), ["--config", config]);
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    const [st, body] = await api("POST", "/secrets/claude", { name: "work-key", type: "api_key", value: "sk-ant-api03-ui-agentfail" });
    assert.equal(st, 201, JSON.stringify(body));
    await sandboxWithAgent("slow-box", "egress", FAKE_CLAUDE);
    await sandboxWithAgent("offline-box", "none", OFFLINE_CLAUDE, { ".offline-claude.stdout": OFFLINE_STDOUT });

    context = await harness.launchBrowser(tmp);
    page = await harness.watchedPage(context, base, outside, consoleErrors);
    await harness.signIn(page, base, adminKey);
  });

  after(async () => {
    for (const name of ["slow-box", "offline-box"]) {
      if (base && adminKey) await api("DELETE", `/sandboxes/${name}`).catch(() => {});
    }
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("ends a send that never answers at the server's deadline and says it timed out", async () => {
    const started = Date.now();
    await send("slow-box", "simulate-sleep");
    const conversation = page.locator("#conversation");
    const pending = conversation.locator(".bubble.agent.pending");
    assert.match(await pending.innerText(), new RegExp(`stopped after ${DEADLINE_SECS} s at most`), "the deadline is shown");
    assert.equal(await page.locator("#send").isDisabled(), true);

    // Ended by the server, in place: the page is not reloaded and never waits on.
    await page.evaluate(() => (window.__samePage = true));
    await page.waitForFunction(() => /^Timed out/.test(document.getElementById("conversation-status")?.textContent ?? ""), null, {
      timeout: (DEADLINE_SECS + 20) * 1000,
    });
    const took = Date.now() - started;
    assert.ok(took < (DEADLINE_SECS + 20) * 1000, `ended after ${took} ms`);
    assert.equal(await page.evaluate(() => window.__samePage), true, "ended in place");
    assert.equal(
      await status(),
      "Timed out: the agent did not answer within the server's deadline and was stopped.",
    );
    const failed = conversation.locator(".bubble.agent.error").last();
    assert.equal(await failed.locator(".badge").innerText(), "timed out");
    assert.match(await failed.locator(".failure").innerText(), /^Timed out: the agent did not answer within the server's deadline and was stopped after \d+ s\.$/);
    assert.match(await failed.locator(".text").innerText(), new RegExp(`did not finish within ${DEADLINE_SECS}s`));
    assert.equal(await pending.count(), 0, "no reply is still waiting");
    assert.equal(await conversation.getByText("Waiting for").count(), 0);
    assert.equal(await page.locator("#send").isDisabled(), false, "Send works again");
    assert.equal(await conversation.getAttribute("data-in-flight"), "false");

    // The elapsed time has stopped: the same a while later, and after a reload.
    const shown = await failed.locator(".failure").innerText();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await failed.locator(".failure").innerText(), shown);
    assert.equal(await page.locator(".elapsed").count(), 0);
    await page.reload();
    assert.equal(await page.locator("#conversation .bubble.agent.error .failure").last().innerText(), shown);
    assert.equal(await page.locator("#conversation").getAttribute("data-in-flight"), null, "nothing runs");

    const [, latest] = await api("GET", "/sandboxes/slow-box/sessions/latest");
    const [, session] = await api("GET", `/sandboxes/slow-box/sessions/${latest.id}`);
    assert.equal(session.transcript.at(-1).error_code, "agent_timeout");
    // At 400 px the reply's header wraps between words, never inside one.
    await page.setViewportSize({ width: 400, height: 900 });
    const broken = await failed.locator(".who").evaluate((who) =>
      [...who.querySelectorAll(".badge, code")].filter((el) => {
        const range = document.createRange();
        range.selectNodeContents(el);
        return range.getClientRects().length > 1;
      }).map((el) => el.textContent),
    );
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.deepEqual(broken, [], "words broken at 400 px");
    await checkPage("sandbox-agent-timed-out");
  });

  it("says an agent in a sandbox without network could not reach its service, not that its credential expired", async () => {
    await send("offline-box", "hello from a sandbox with no network");
    await page.waitForFunction(() => document.getElementById("conversation-status")?.textContent.startsWith("The agent could not reach"));
    assert.equal(await status(), "The agent could not reach its service over the network.");
    const failed = page.locator("#conversation .bubble.agent.error").last();
    await failed.waitFor();
    assert.equal(await failed.locator(".badge").innerText(), "unreachable");
    assert.equal(
      await failed.locator(".failure").innerText(),
      "The agent could not reach its service over the network: the credential was not the problem.",
    );
    const text = await failed.locator(".text").innerText();
    assert.match(text, /could not reach its provider/);
    assert.match(text, /network mode is none/);
    assert.match(text, /Can't reach the API server/, "the agent's own words are quoted");
    const all = await page.locator("main").innerText();
    for (const blame of [/expired/i, /revoked/i, /could not authenticate/i]) {
      assert.doesNotMatch(all, blame, "the credential is not blamed");
    }
    // No green success notice above the failure, before or after a reload.
    assert.equal(await page.locator(".notice").count(), 0);
    assert.equal(await page.locator("#send").isDisabled(), false);
    await page.reload();
    assert.equal(await page.locator(".notice").count(), 0);
    assert.equal(await page.locator("#conversation .bubble.agent.error .badge").last().innerText(), "unreachable");

    const [, latest] = await api("GET", "/sandboxes/offline-box/sessions/latest");
    const [, session] = await api("GET", `/sandboxes/offline-box/sessions/${latest.id}`);
    assert.equal(session.transcript.at(-1).error_code, "agent_unreachable");
    await checkPage("sandbox-agent-unreachable");
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
