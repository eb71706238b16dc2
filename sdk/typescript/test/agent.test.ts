/**
 * agent-send through the SDK against a real `amika server` (SQLite, bubblewrap sandboxes): the
 * synchronous send, session continuity, the job form, the sessions of a sandbox, the skipped-kind
 * error, cancellation and redaction. No HTTP mocks.
 *
 * The real agent CLIs cannot reach their providers from the test machines, so, as the Rust e2e
 * tests do (`crates/cli/tests/e2e_agent.rs`), each sandbox gets the repository's *test agents*
 * (`crates/cli/tests/fixtures/fake-claude.sh`, `fake-codex.sh`, read from there at test time)
 * installed under the agents' command names in `~/.local/bin` through exec. The fake claude
 * prints a SHA-256 of the credential it finds, echoes the message and the session it was asked
 * to resume; words in the message make it crash, sleep or print its raw credential.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { Agent } from "undici";

import {
  AmikaAgentJobTimeoutError,
  AmikaApiError,
  AmikaClient,
  AmikaError,
  AmikaNetworkError,
  type AgentSendResponse,
} from "../src/index.js";
import { repoRoot, startServer, type TestServer } from "./server.js";

let server: TestServer;
let amika: AmikaClient;

const ACCESS = "sk-ant-oat01-SDKAGENTACCESS-3c9e0d51aa";
const REFRESH = "sk-ant-ort01-SDKAGENTREFRESH-77b2e4f0cd";
const CLAUDE_KEY = "sk-ant-api03-SDKAGENTKEY-5e5e1f2a90";
const DB_URL = "postgres://app:sdk-agent-db-pw-82c1@db:5432/app";
const oauthJson = JSON.stringify({
  claudeAiOauth: { accessToken: ACCESS, refreshToken: REFRESH, expiresAt: 4102444800000, scopes: ["user:inference"] },
});
/** Values given to the sandboxes: none may come back in any SDK result. */
const RAW_VALUES = [ACCESS, REFRESH, CLAUDE_KEY, DB_URL, oauthJson];

/** Every answer and error the SDK gave in this file, for the redaction check at the end. */
const seen: unknown[] = [];
function keep<T>(value: T): T {
  seen.push(value);
  return value;
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/** The reply's fields: exactly the wire's, camelCased. */
const REPLY_KEYS = [
  "agent",
  "agentSessionId",
  "costUsd",
  "durationMs",
  "errorCode",
  "exitCode",
  "isError",
  "isNewSession",
  "jobId",
  "response",
  "sessionId",
];

before(async () => {
  server = await startServer();
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
  await amika.createProviderSecret("claude", { name: "personal-oauth", type: "oauth", value: oauthJson, isDefault: true });
  await amika.createProviderSecret("claude", { name: "backup-key", type: "api_key", value: CLAUDE_KEY });
  await amika.createSecret({ name: "DATABASE_URL", value: DB_URL });
  // agent-box: claude with the OAuth credential, codex skipped; leaky: claude with the API key
  // and a secret in its environment.
  await amika.createSandbox({
    name: "agent-box",
    agentCredentials: [{ kind: "claude", name: "personal-oauth" }, { kind: "codex", none: true }],
  });
  await amika.createSandbox({
    name: "leaky",
    secretEnvVars: { DATABASE_URL: "DATABASE_URL" },
    agentCredentials: [{ kind: "claude", name: "backup-key" }],
  });
  const fixtures = join(repoRoot, "crates", "cli", "tests", "fixtures");
  const agents = [
    ["claude", await readFile(join(fixtures, "fake-claude.sh"), "utf8")],
    ["codex", await readFile(join(fixtures, "fake-codex.sh"), "utf8")],
  ] as const;
  for (const box of ["agent-box", "leaky"]) {
    await amika.waitUntilReady(box, { timeoutMs: 30_000 });
    for (const [command, script] of agents) {
      // The script travels as an argument ($1), so nothing in it is read by a shell.
      const r = await amika.exec(box, [
        "sh",
        "-c",
        `mkdir -p "$HOME/.local/bin" && printf '%s' "$1" > "$HOME/.local/bin/${command}" && chmod 755 "$HOME/.local/bin/${command}"`,
        "install-test-agent",
        script,
      ]);
      assert.equal(r.exitCode, 0, `installing the test agent ${command} in ${box}: ${r.stderr}`);
    }
  }
});

after(async () => {
  if (amika) {
    for (const sb of await amika.listSandboxes().catch(() => [])) {
      await amika.deleteSandbox(sb.id).catch(() => {});
    }
  }
  await server?.stop();
});

/** Await a promise that must fail with an `AmikaApiError` like this, with a trace id. */
async function expectApiError(
  p: Promise<unknown>,
  want: { status: number; code: string; message: RegExp },
): Promise<AmikaApiError> {
  try {
    await p;
  } catch (e) {
    keep({ error: String(e), details: (e as AmikaApiError).details });
    assert.ok(e instanceof AmikaApiError, `expected AmikaApiError, got ${String(e)}`);
    assert.equal(e.status, want.status, e.message);
    assert.equal(e.code, want.code, e.message);
    assert.match(e.message, want.message);
    assert.match(e.traceId, /^[0-9a-f]{32}$/, `trace id ${e.traceId}`);
    assert.ok(server.log().includes(e.traceId), `trace id ${e.traceId} not in the server log`);
    return e;
  }
  assert.fail(`expected a ${want.status} ${want.code} error, but the call succeeded`);
}

async function waitUntil(what: string, limitMs: number, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await done())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every process in the sandbox, one command line per line (`ps` may not be installed). */
async function processes(box: string): Promise<string> {
  const r = await amika.exec(box, [
    "sh",
    "-c",
    `for p in /proc/[0-9]*; do tr '\\0' ' ' < "$p/cmdline" 2>/dev/null; echo; done`,
  ]);
  return r.stdout;
}

/** Whether the test agent has ever run as `command` in the sandbox (it logs every run). */
async function agentRan(box: string, command: "claude" | "codex"): Promise<boolean> {
  const r = await amika.exec(box, ["sh", "-c", `test -e "$HOME/.fake-${command}-runs"`]);
  return r.exitCode === 0;
}

/** The newest session of a sandbox, with its transcript. */
async function newestSession(box: string) {
  const { sessions } = await amika.listSessions(box, { limit: 1 });
  assert.ok(sessions[0], `${box} has a session`);
  return amika.getSession(box, sessions[0].id);
}

/** The first session of agent-box and its sends, for the later tests. */
let first: AgentSendResponse;
let second: AgentSendResponse;
let fresh: AgentSendResponse;
const tricky = "add tests for the parser; $(touch /tmp/pwned) 'single' \"double\" {session} ✓";

describe("agentSend", () => {
  test("the reply echoes the message and proves the agent got exactly the resolved credential", async () => {
    // No `agent`: the first kind resolved for the sandbox, claude.
    first = keep(await amika.agentSend("agent-box", { message: tricky }));
    assert.deepEqual(Object.keys(first).sort(), REPLY_KEYS);
    assert.ok(first.response.startsWith(`echo: ${tricky}\n`), first.response);
    // The OAuth document it was given, byte for byte, and not the other claude credential.
    assert.ok(
      first.response.includes(`credential: file .claude/.credentials.json sha256=${sha256(oauthJson)}\n`),
      first.response,
    );
    assert.ok(!first.response.includes(sha256(CLAUDE_KEY)), first.response);
    assert.ok(first.response.includes("resumed: none"), first.response);
    assert.equal(first.agent, "claude");
    assert.equal(first.isError, false);
    assert.equal(first.isNewSession, true);
    assert.equal(first.errorCode, null);
    assert.equal(first.exitCode, 0);
    assert.equal(first.costUsd, 0.0042);
    assert.equal(typeof first.durationMs, "number");
    assert.match(first.sessionId, /^ses_/);
    assert.ok(first.agentSessionId, "the agent's own session id");
    assert.ok(first.jobId);
    // The message reached the agent as one argument, untouched by a shell.
    assert.equal((await amika.exec("agent-box", ["test", "-e", "/tmp/pwned"])).exitCode, 1);
  });

  test("continuing with the returned sessionId resumes the agent's conversation; newSession starts over", async () => {
    second = keep(await amika.agentSend("agent-box", { message: "and now", sessionId: first.sessionId }));
    assert.equal(second.sessionId, first.sessionId);
    assert.equal(second.isNewSession, false);
    assert.ok(second.response.startsWith("echo: and now\n"), second.response);
    assert.ok(second.response.includes(`resumed: ${first.agentSessionId}`), second.response);
    // Claude answers a resumed conversation under a new id of its own.
    assert.notEqual(second.agentSessionId, first.agentSessionId);

    fresh = keep(await amika.agentSend("agent-box", { message: "start over", newSession: true, agent: "claude" }));
    assert.notEqual(fresh.sessionId, first.sessionId);
    assert.equal(fresh.isNewSession, true);
    assert.ok(fresh.response.includes("resumed: none"), fresh.response);
  });

  test("a kind skipped at create is a 422 agent_credential_skipped and starts nothing", async () => {
    const before = (await amika.listSessions("agent-box")).total;
    const err = await expectApiError(amika.agentSend("agent-box", { message: "hello", agent: "codex" }), {
      status: 422,
      code: "agent_credential_skipped",
      message:
        /^sandbox "agent-box" has no codex credential: it was skipped when the sandbox was created \(no-agent-credential flag\)\. Recreate the sandbox with `--agent-credential codex=NAME`/,
    });
    assert.ok(err instanceof AmikaError);
    assert.equal(err.request, "POST /api/v0beta1/sandboxes/agent-box/agent-send");
    await expectApiError(amika.startAgentSendJob("agent-box", { message: "hello", agent: "codex" }), {
      status: 422,
      code: "agent_credential_skipped",
      message: /has no codex credential/,
    });
    assert.equal(await agentRan("agent-box", "codex"), false, "the codex test agent ran");
    assert.equal((await amika.listSessions("agent-box")).total, before, "a session was started");
  });

  test("bad requests say what is wrong", async () => {
    await expectApiError(amika.agentSend("agent-box", { message: "  " }), {
      status: 400,
      code: "invalid_request",
      message: /message must not be empty/,
    });
    await expectApiError(amika.agentSend("agent-box", { message: "m", sessionId: first.sessionId, newSession: true }), {
      status: 400,
      code: "invalid_request",
      message: /session_id and new_session exclude each other/,
    });
    await expectApiError(amika.agentSend("agent-box", { message: "m", timeoutSecs: 100_000 }), {
      status: 422,
      code: "over_limit",
      message: /longer than this server's agent deadline of 600s/,
    });
    await expectApiError(amika.agentSend("agent-box", { message: "m", sessionId: "ses_nope" }), {
      status: 422,
      code: "not_found",
      message: /agent session "ses_nope" in sandbox "agent-box" not found/,
    });
    await expectApiError(amika.agentSend("no-such-box", { message: "m" }), {
      status: 404,
      code: "not_found",
      message: /no-such-box/,
    });
    await expectApiError(amika.getAgentSendJob("agent-box", "job_missing"), {
      status: 404,
      code: "not_found",
      message: /agent-send job "job_missing" in sandbox "agent-box"/,
    });
    await expectApiError(amika.getSession("agent-box", "ses_missing"), {
      status: 404,
      code: "not_found",
      message: /ses_missing/,
    });
    await expectApiError(amika.listSessions("agent-box", { limit: 0 }), {
      status: 400,
      code: "invalid_request",
      message: /limit must be between 1 and 1000, not 0/,
    });
    await expectApiError(amika.listSessions("agent-box", { status: "asleep" as "idle" }), {
      status: 400,
      code: "invalid_request",
      message: /asleep.*idle, running, completed, failed or cancelled/,
    });
    // Ids that cannot be a path segment are refused before any request.
    await assert.rejects(amika.getAgentSendJob("agent-box", ""), (e: unknown) => {
      assert.ok(e instanceof AmikaError && !(e instanceof AmikaApiError), String(e));
      assert.equal(e.message, 'invalid job id "": expected a non-empty id or name');
      return true;
    });
    await assert.rejects(amika.getSession("agent-box", ".."), /invalid session id "\.\."/);
  });
});

describe("the job form", () => {
  test("startAgentSendJob answers at once; getAgentSendJob and waitForAgentSendJob follow it to its reply", async () => {
    const job = keep(await amika.startAgentSendJob("agent-box", { message: "a long task", sessionId: first.sessionId }));
    assert.ok(["pending", "running", "done"].includes(job.state), job.state);
    assert.equal(job.sessionId, first.sessionId);
    assert.equal(job.agent, "claude");
    assert.equal(job.isNewSession, false);
    if (job.state !== "done") {
      assert.equal(job.response, null);
      assert.equal(job.resultText, null);
    }
    const polled = keep(await amika.getAgentSendJob("agent-box", job.jobId));
    assert.equal(polled.jobId, job.jobId);

    const done = keep(await amika.waitForAgentSendJob("agent-box", job.jobId, { timeoutMs: 30_000 }));
    assert.equal(done.state, "done");
    assert.equal(done.isError, false);
    assert.ok(done.resultText.startsWith("echo: a long task\n"), done.resultText);
    assert.ok(done.resultText.includes(`resumed: ${second.agentSessionId}`), done.resultText);
    assert.ok(done.resultText.includes(`sha256=${sha256(oauthJson)}`), done.resultText);
    // The whole answer, as the synchronous form gives it.
    assert.deepEqual(Object.keys(done.response).sort(), REPLY_KEYS);
    assert.equal(done.response.jobId, job.jobId);
    assert.equal(done.response.sessionId, first.sessionId);
    assert.equal(done.response.response, done.resultText);
    assert.equal(done.response.exitCode, 0);
    assert.ok(Date.parse(done.updatedAt) >= Date.parse(done.createdAt));
  });

  test("a crashed agent is a failed job with its exit status, not an exception", async () => {
    const job = keep(await amika.startAgentSendJob("agent-box", { message: "simulate-crash", newSession: true }));
    const failed = keep(await amika.waitForAgentSendJob("agent-box", job.jobId, { timeoutMs: 30_000 }));
    assert.equal(failed.state, "failed");
    assert.equal(failed.isError, true);
    assert.equal(failed.response.errorCode, "agent_crashed");
    assert.equal(failed.response.exitCode, 3);
    assert.equal(
      failed.response.response,
      "the agent exited with status 3: fake-claude: simulated crash: segmentation fault in the parser",
    );
  });

  test("waitForAgentSendJob gives up after timeoutMs with the job as last seen; the job goes on to its deadline", async () => {
    const job = keep(
      await amika.startAgentSendJob("agent-box", { message: "simulate-sleep", newSession: true, timeoutSecs: 1 }),
    );
    const err = await amika
      .waitForAgentSendJob("agent-box", job.jobId, { timeoutMs: 100, intervalMs: 20 })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof AmikaAgentJobTimeoutError, String(err));
    assert.ok(err instanceof AmikaError);
    assert.equal(err.job.jobId, job.jobId);
    assert.ok(["pending", "running"].includes(err.job.state), err.job.state);
    assert.equal(err.timeoutMs, 100);
    assert.match(
      err.message,
      new RegExp(`^agent-send job ${job.jobId} in sandbox agent-box has not finished after 100 ms \\(state (pending|running)\\)$`),
    );
    // The server's deadline (timeoutSecs: 1) stops it.
    const failed = keep(await amika.waitForAgentSendJob("agent-box", job.jobId, { timeoutMs: 30_000 }));
    assert.equal(failed.state, "failed");
    assert.equal(failed.response.errorCode, "agent_timeout");
    assert.equal(failed.response.exitCode, null);
    await waitUntil("the timed-out agent to be gone", 10_000, async () => !(await processes("agent-box")).includes("sleep 297"));
  });
});

describe("sessions", () => {
  test("listSessions pages and filters the sandbox's sessions; getSession has the transcript", async () => {
    const all = keep(await amika.listSessions("agent-box"));
    // first (3 sends), fresh, the crashed one, the timed-out one.
    assert.equal(all.total, 4);
    assert.equal(all.sessions.length, 4);
    const ids = all.sessions.map((s) => s.id);
    assert.ok(ids.includes(first.sessionId) && ids.includes(fresh.sessionId), String(ids));
    for (const s of all.sessions) {
      assert.ok(!("transcript" in s), "a listed session has no transcript");
      assert.equal(s.agentName, "claude");
      // A session whose last send failed (the crash, the deadline) says so.
      const ok = s.id === first.sessionId || s.id === fresh.sessionId;
      assert.equal(s.status, ok ? "idle" : "failed", s.id);
      assert.equal(s.endedAt, null);
    }
    // Most recently used first.
    const times = all.sessions.map((s) => Date.parse(s.updatedAt));
    assert.deepEqual(times, [...times].sort((a, b) => b - a));

    const page = keep(await amika.listSessions("agent-box", { limit: 1, offset: 1 }));
    assert.equal(page.total, 4);
    assert.deepEqual(page.sessions, [all.sessions[1]]);
    assert.equal((await amika.listSessions("agent-box", { status: "running" })).total, 0);
    assert.equal((await amika.listSessions("agent-box", { status: "idle" })).total, 2);
    assert.equal((await amika.listSessions("agent-box", { status: "failed" })).total, 2);

    const s = keep(await amika.getSession("agent-box", first.sessionId));
    assert.equal(s.id, first.sessionId);
    assert.equal(s.status, "idle");
    assert.equal(s.turnCount, 3);
    assert.equal(s.agentName, "claude");
    // The caller's metadata (none here), apart from what the server records.
    assert.deepEqual(s.metadata, {});
    assert.deepEqual(s.serverMetadata, { credential: "personal-oauth" });
    assert.ok(s.transcript, "getSession has the transcript");
    assert.deepEqual(
      s.transcript.map((t) => t.message),
      [tricky, "and now", "a long task"],
    );
    const [t0, t1] = s.transcript;
    assert.equal(t0?.id, first.jobId);
    assert.equal(t0?.response, first.response);
    assert.equal(t0?.state, "done");
    assert.equal(t0?.isNewSession, true);
    assert.equal(t1?.id, second.jobId);
    assert.equal(t1?.isNewSession, false);
    assert.equal(t1?.agentSessionId, second.agentSessionId);
    assert.ok(t0?.finishedAt && Date.parse(t0.finishedAt) >= Date.parse(t0.createdAt));
  });
});

describe("cancellation", () => {
  // A send that is not cancelled would wait for the agent's `sleep 297`: fail instead.
  test("aborting agentSend's signal closes the connection, which kills the agent", { timeout: 60_000 }, async () => {
    const controller = new AbortController();
    const sending = amika.agentSend("agent-box", { message: "simulate-sleep", newSession: true, signal: controller.signal });
    const outcome = sending.then(() => undefined, (e: unknown) => e);
    await waitUntil("the agent to start", 30_000, async () => (await processes("agent-box")).includes("sleep 297"));
    controller.abort();
    const err = await outcome;
    assert.equal((err as Error)?.name, "AbortError", String(err));
    await waitUntil("the agent to be killed", 15_000, async () => !(await processes("agent-box")).includes("sleep 297"));
    // The send is recorded as cancelled.
    await waitUntil("the cancellation to be recorded", 10_000, async () => {
      const s = keep(await newestSession("agent-box"));
      return s.transcript?.[0]?.errorCode === "agent_cancelled" && s.transcript[0].state === "failed";
    });
  });

  test("fetch's own headers timeout gives an error that points to the job form", { timeout: 60_000 }, async () => {
    // The built-in fetch with a 300 ms headers timeout stands in for its default of 300 s (set
    // the way the README sets none).
    const dispatcher = new Agent({ headersTimeout: 300 });
    try {
      const impatient = new AmikaClient({
        baseUrl: server.url,
        accessToken: server.adminKey,
        fetch: (url, init) => fetch(url, { ...init, dispatcher } as RequestInit),
      });
      const err = await impatient
        .agentSend("agent-box", { message: "simulate-sleep", newSession: true, timeoutSecs: 60 })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof AmikaNetworkError, String(err));
      assert.match(
        err.message,
        /did not answer POST .*\/sandboxes\/agent-box\/agent-send before fetch's own headers timeout .*use startAgentSendJob and waitForAgentSendJob/,
      );
      // The client went away: the server stops the agent.
      await waitUntil("the agent to be killed", 15_000, async () => !(await processes("agent-box")).includes("sleep 297"));
    } finally {
      await dispatcher.close();
    }
  });
});

describe("redaction", () => {
  test("an agent that prints its credential, and a message that carries a secret, come back redacted", async () => {
    const message = `echo-credential, then connect to ${DB_URL}`;
    const leaked = keep(await amika.agentSend("leaky", { message }));
    assert.equal(leaked.isError, false, leaked.response);
    assert.ok(leaked.response.includes(`credential: env ANTHROPIC_API_KEY sha256=${sha256(CLAUDE_KEY)}`), leaked.response);
    assert.ok(leaked.response.includes("raw credential: [REDACTED:backup-key]"), leaked.response);
    assert.ok(leaked.response.includes("connect to [REDACTED:DATABASE_URL]"), leaked.response);

    // The OAuth document printed whole.
    const doc = keep(await amika.agentSend("agent-box", { message: "echo-credential", newSession: true }));
    assert.ok(doc.response.includes("[REDACTED:personal-oauth]"), doc.response);

    // The job form.
    const job = await amika.startAgentSendJob("leaky", { message: "echo-credential from a job" });
    const done = keep(await amika.waitForAgentSendJob("leaky", job.jobId, { timeoutMs: 30_000 }));
    assert.ok(done.resultText.includes("raw credential: [REDACTED:backup-key]"), done.resultText);

    // The stored transcripts.
    for (const box of ["leaky", "agent-box"]) {
      for (const s of keep(await amika.listSessions(box)).sessions) keep(await amika.getSession(box, s.id));
    }
    const leakySession = keep(await amika.getSession("leaky", leaked.sessionId));
    assert.equal(leakySession.transcript?.[0]?.message, "echo-credential, then connect to [REDACTED:DATABASE_URL]");
  });

  test("no raw value appears in any SDK result of this file", () => {
    // Replies, jobs, sessions, transcripts and errors of every test above.
    assert.ok(seen.length > 30, `only ${seen.length} results were collected`);
    const all = JSON.stringify(seen);
    assert.ok(all.includes("[REDACTED:backup-key]") && all.includes("[REDACTED:personal-oauth]"));
    for (const value of RAW_VALUES) {
      assert.ok(!all.includes(value), `a raw value (${value.slice(0, 12)}...) came back through the SDK`);
    }
  });
});
