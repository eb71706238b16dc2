/**
 * Streamed agent sends through the SDK: `agentSendStream` and `followAgentSendJob` against a
 * real `amika server` (SQLite, bubblewrap sandboxes), and the SSE reader on hand-cut bodies.
 *
 * The agent is the repository's *stand-in* `claude` (`crates/cli/tests/fixtures/fake-claude.sh`,
 * a test script, not the real CLI, which cannot reach its provider here), installed in each
 * sandbox's `~/.local/bin`. In stream-json mode it prints what `claude -p` prints: two text
 * deltas, a Bash tool call of `pwd` and its result, then the answer. Words in the message:
 * `simulate-slow` waits 3 s after its first delta, `simulate-sleep` never ends, `simulate-auth`
 * fails authentication, `echo-credential` prints its raw credential.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  AmikaApiError,
  AmikaClient,
  AmikaError,
  AmikaNetworkError,
  type AgentStreamEvent,
} from "../src/index.js";
import { readAgentEvents, SseParser, type SseEvent } from "../src/stream.js";
import { repoRoot, startServer, type TestServer } from "./server.js";

let server: TestServer;
let amika: AmikaClient;

const ACCESS = "sk-ant-oat01-SDKSTREAMACCESS-9a8b7c6d5e";
const REFRESH = "sk-ant-ort01-SDKSTREAMREFRESH-1b2c3d4e5f";
const DB_URL = "postgres://app:sdk-stream-db-pw-4d3c@db:5432/app";
const oauthJson = JSON.stringify({
  claudeAiOauth: { accessToken: ACCESS, refreshToken: REFRESH, expiresAt: 4102444800000, scopes: ["user:inference"] },
});
const AUTH_MESSAGE =
  "the agent could not authenticate with its provider; credential personal-oauth may have expired or been revoked";

before(async () => {
  server = await startServer();
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
  await amika.createProviderSecret("claude", { name: "personal-oauth", type: "oauth", value: oauthJson, isDefault: true });
  await amika.createSecret({ name: "DATABASE_URL", value: DB_URL });
  const script = await readFile(join(repoRoot, "crates", "cli", "tests", "fixtures", "fake-claude.sh"), "utf8");
  // live: the ordinary sends; stopper: the sends that are stopped (one sandbox each, so that a
  // send being cancelled never makes another wait for its session).
  for (const name of ["live", "stopper"]) {
    await amika.createSandbox({
      name,
      secretEnvVars: { DATABASE_URL: "DATABASE_URL" },
      agentCredentials: [{ kind: "claude", name: "personal-oauth" }, { kind: "codex", none: true }],
    });
  }
  for (const name of ["live", "stopper"]) {
    await amika.waitUntilReady(name, { timeoutMs: 30_000 });
    // The script travels as an argument ($1), so nothing in it is read by a shell.
    const r = await amika.exec(name, [
      "sh",
      "-c",
      `mkdir -p "$HOME/.local/bin" && printf '%s' "$1" > "$HOME/.local/bin/claude" && chmod 755 "$HOME/.local/bin/claude"`,
      "install-stand-in-agent",
      script,
    ]);
    assert.equal(r.exitCode, 0, r.stderr);
  }
});

after(async () => {
  for (const name of ["live", "stopper"]) await amika?.deleteSandbox(name).catch(() => {});
  await server?.stop();
});

/** `event`, with the state or the kind: `status:pending`, `delta:text`, `done`. */
const shape = (events: AgentStreamEvent[]) =>
  events.map((e) => (e.event === "status" ? `status:${e.state}` : e.event === "delta" ? `delta:${e.kind}` : e.event));

/** The job id of a send's first event (its status). */
function jobOf(events: AgentStreamEvent[]): string {
  const first = events[0];
  assert.ok(first?.event === "status", `the first event is a status: ${JSON.stringify(first)}`);
  return first.jobId;
}

const streamedText = (events: AgentStreamEvent[]) =>
  events.map((e) => (e.event === "delta" && e.kind === "text" ? e.text : "")).join("");

/** Every event of an iteration, and when each came (ms since the start). */
async function collect(events: AsyncIterable<AgentStreamEvent>): Promise<{ event: AgentStreamEvent; at: number }[]> {
  const started = Date.now();
  const seen = [];
  for await (const event of events) seen.push({ event, at: Date.now() - started });
  return seen;
}

async function waitUntil(what: string, limitMs: number, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await done())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether the stand-in's `sleep 297` runs in the sandbox (`ps` may not be installed). */
async function sleeping(box: string): Promise<boolean> {
  const r = await amika.exec(box, ["sh", "-c", `for p in /proc/[0-9]*; do tr '\\0' ' ' < "$p/cmdline" 2>/dev/null; echo; done`]);
  return r.stdout.includes("sleep 297");
}

/** The last send of the sandbox's latest session. */
async function lastTurn(box: string) {
  const latest = await amika.getLatestSession(box);
  assert.ok(latest, `${box} has a session`);
  const s = await amika.getSession(box, latest.id);
  return s.transcript?.at(-1);
}

/** Await a promise (or an iteration's first step) that must fail; its error. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail("expected an error, but the call succeeded"),
    (e: unknown) => e,
  );
}

describe("agentSendStream", () => {
  test("yields status, the deltas and the answer, in order, camelCased", async () => {
    const seen = await collect(amika.agentSendStream("live", { message: "hello stream" }));
    const events = seen.map((s) => s.event);
    assert.deepEqual(shape(events), [
      "status:pending",
      "status:running",
      "delta:text",
      "delta:text",
      "delta:tool_call",
      "delta:tool_result",
      "done",
    ]);
    const done = events.at(-1)!;
    assert.ok(done.event === "done");
    assert.equal(done.isError, false);
    assert.equal(done.exitCode, 0);
    assert.equal(done.agent, "claude");
    assert.ok(done.response.startsWith("echo: hello stream\n"), done.response);
    // The deltas add up to the answer; the tool call and its result are Claude's Bash `pwd`.
    assert.equal(streamedText(events), done.response);
    assert.deepEqual(events[4], { event: "delta", kind: "tool_call", text: "pwd", tool: "Bash" });
    assert.deepEqual(events[5], { event: "delta", kind: "tool_result", text: "/home/amika/workspace", tool: "Bash" });
    for (const e of events.slice(0, 2)) {
      assert.ok(e.event === "status");
      assert.deepEqual(Object.keys(e).sort(), ["agent", "event", "isNewSession", "jobId", "sessionId", "state"]);
      assert.equal(e.jobId, done.jobId);
      assert.equal(e.sessionId, done.sessionId);
    }
    // The send is a turn of its session like any other.
    const turn = await lastTurn("live");
    assert.equal(turn?.id, done.jobId);
    assert.equal(turn?.response, done.response);
  });

  test("deltas arrive while the agent still works (simulate-slow)", async () => {
    const seen = await collect(amika.agentSendStream("live", { message: "simulate-slow now" }));
    const firstText = seen.find((s) => s.event.event === "delta" && s.event.kind === "text");
    const done = seen.at(-1)!;
    assert.ok(firstText, "a text delta");
    assert.equal(done.event.event, "done");
    // The stand-in waits 3 s after its first delta: that delta came before, not with the rest.
    assert.ok(done.at >= firstText.at + 2500, `first delta at ${firstText.at} ms, done at ${done.at} ms`);
  });

  test("no raw value appears in any event; the answer and the deltas are redacted alike", async () => {
    const seen = await collect(
      amika.agentSendStream("live", { message: `echo-credential, then connect to ${DB_URL}`, newSession: true }),
    );
    const all = JSON.stringify(seen.map((s) => s.event));
    assert.ok(all.includes("[REDACTED:personal-oauth]"), all);
    assert.ok(all.includes("connect to [REDACTED:DATABASE_URL]"), all);
    for (const value of [ACCESS, REFRESH, DB_URL, oauthJson]) {
      assert.ok(!all.includes(value), `a raw value (${value.slice(0, 12)}...) came back in an event`);
    }
    assert.equal(streamedText(seen.map((s) => s.event)), (seen.at(-1)!.event as { response: string }).response);
  });

  test("an agent that cannot authenticate ends the iteration with agentSend's AmikaApiError", async () => {
    const events: AgentStreamEvent[] = [];
    const err = await failure(
      (async () => {
        for await (const e of amika.agentSendStream("live", { message: "simulate-auth" })) events.push(e);
      })(),
    );
    assert.deepEqual(shape(events), ["status:pending", "status:running"]);
    assert.ok(err instanceof AmikaApiError, String(err));
    assert.equal(err.status, 422);
    assert.equal(err.code, "agent_auth_failed");
    assert.equal(err.message, AUTH_MESSAGE);
    assert.equal(err.request, "POST /api/v0beta1/sandboxes/live/agent-send/stream");
    assert.match(err.traceId, /^[0-9a-f]{32}$/);
    assert.ok(server.log().includes(err.traceId), "the trace id is in the server's log");
    assert.equal(err.details[0]?.field, "agent");
    assert.equal(err.details[0]?.code, "agent_auth_failed");

    // The synchronous form rejects with the same error (the new 422), details and all.
    const sync = await failure(amika.agentSend("live", { message: "simulate-auth" }));
    assert.ok(sync instanceof AmikaApiError, String(sync));
    assert.equal(sync.status, 422);
    assert.equal(sync.code, "agent_auth_failed");
    assert.equal(sync.message, err.message);
    assert.deepEqual(sync.details, err.details);
    assert.equal(sync.details[0]?.message, AUTH_MESSAGE);

    // Following the failed job afterwards ends the same way.
    const followed = await failure(collect(amika.followAgentSendJob("live", jobOf(events))));
    assert.ok(followed instanceof AmikaApiError && followed.code === "agent_auth_failed", String(followed));
    assert.deepEqual(followed.details, err.details);
  });

  test("errors before the agent starts reject the first step, as agentSend's do", async () => {
    const first = (message: string, sandbox = "live", agent?: "codex") =>
      failure(amika.agentSendStream(sandbox, { message, agent }).next());
    const empty = await first("  ");
    assert.ok(empty instanceof AmikaApiError, String(empty));
    assert.equal(empty.status, 400);
    assert.equal(empty.details[0]?.field, "message");
    const missing = await first("hi", "no-such-box");
    assert.ok(missing instanceof AmikaApiError && missing.status === 404, String(missing));
    const skipped = await first("hi", "live", "codex");
    assert.ok(skipped instanceof AmikaApiError, String(skipped));
    assert.equal(skipped.status, 422);
    assert.equal(skipped.code, "agent_credential_skipped");
    assert.equal(skipped.request, "POST /api/v0beta1/sandboxes/live/agent-send/stream");
  });
});

describe("stopping a streamed send", () => {
  test("aborting the signal closes the connection: the agent is stopped, the send recorded agent_cancelled", { timeout: 90_000 }, async () => {
    const controller = new AbortController();
    const events: AgentStreamEvent[] = [];
    const iterating = (async () => {
      for await (const e of amika.agentSendStream("stopper", { message: "simulate-sleep" }, { signal: controller.signal })) {
        events.push(e);
      }
    })().then(() => undefined, (e: unknown) => e);
    await waitUntil("the agent to start", 30_000, () => sleeping("stopper"));
    controller.abort();
    const err = await iterating;
    assert.equal((err as Error)?.name, "AbortError", String(err));
    assert.deepEqual(shape(events), ["status:pending", "status:running"]);
    await waitUntil("the agent to be stopped", 20_000, async () => !(await sleeping("stopper")));
    await waitUntil("the cancellation to be recorded", 20_000, async () => (await lastTurn("stopper"))?.state === "failed");
    const turn = await lastTurn("stopper");
    assert.equal(turn?.id, jobOf(events));
    assert.equal(turn?.errorCode, "agent_cancelled");
  });

  test("leaving the loop early closes the connection and stops the agent too", { timeout: 90_000 }, async () => {
    let jobId = "";
    for await (const e of amika.agentSendStream("stopper", { message: "simulate-sleep again" })) {
      if (e.event === "status") jobId = e.jobId;
      if (e.event === "status" && e.state === "running") {
        await waitUntil("the agent to start", 30_000, () => sleeping("stopper"));
        break;
      }
    }
    assert.ok(jobId);
    await waitUntil("the agent to be stopped", 20_000, async () => !(await sleeping("stopper")));
    await waitUntil("the cancellation to be recorded", 20_000, async () => (await lastTurn("stopper"))?.state === "failed");
    const turn = await lastTurn("stopper");
    assert.equal(turn?.id, jobId);
    assert.equal(turn?.errorCode, "agent_cancelled");
  });
});

describe("followAgentSendJob", () => {
  test("follows a job live, and after its end gives its status and answer", async () => {
    const job = await amika.startAgentSendJob("live", { message: "simulate-slow followed", newSession: true });
    const live = (await collect(amika.followAgentSendJob("live", job.jobId))).map((s) => s.event);
    assert.equal(live[0]?.event, "status");
    assert.ok(shape(live).includes("delta:tool_call"), String(shape(live)));
    const done = live.at(-1)!;
    assert.ok(done.event === "done");
    assert.equal(done.jobId, job.jobId);
    assert.equal(streamedText(live), done.response);

    const afterwards = (await collect(amika.followAgentSendJob("live", job.jobId))).map((s) => s.event);
    assert.deepEqual(shape(afterwards), ["status:done", "done"]);
    assert.deepEqual(afterwards[1], done);
  });

  test("leaving a follow early leaves the job running to its answer", async () => {
    const job = await amika.startAgentSendJob("live", { message: "simulate-slow left alone" });
    for await (const e of amika.followAgentSendJob("live", job.jobId)) {
      if (e.event === "delta") break;
    }
    const finished = await amika.waitForAgentSendJob("live", job.jobId, { timeoutMs: 30_000 });
    assert.equal(finished.state, "done");
    assert.equal(finished.response.errorCode, null);
    assert.ok(finished.resultText.startsWith("echo: simulate-slow left alone\n"), finished.resultText);
  });

  test("a job that does not exist is a 404 at the first step", async () => {
    const err = await failure(amika.followAgentSendJob("live", "job_nope").next());
    assert.ok(err instanceof AmikaApiError, String(err));
    assert.equal(err.status, 404);
    assert.equal(err.request, "GET /api/v0beta1/sandboxes/live/agent-send-jobs/job_nope/events");
  });
});

// ------------------------------------------------------------------ the SSE reader, on hand-cut bodies

/** Every event of `chunks` fed one by one, then the end of the body. */
function parseAll(chunks: string[]): SseEvent[] {
  const p = new SseParser();
  return [...chunks.flatMap((c) => p.push(c)), ...p.end()];
}

/** `text` cut into pieces of `size` characters. */
function cut(text: string, size: number): string[] {
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** A `Response` whose body arrives as these byte chunks. */
function body(chunks: Uint8Array[], contentType = "text/event-stream"): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
  return new Response(stream, { headers: { "content-type": contentType, "x-trace-id": "trace-from-header" } });
}

const bytes = (text: string) => new TextEncoder().encode(text);

describe("SseParser", () => {
  const wire =
    ': keep-alive\r\nevent: status\r\ndata: {"a":1}\r\n\r\n' +
    "event: delta\ndata: line one\ndata: line two\n\n" +
    "event:done\rdata:x\r\r" +
    "data: no type\nid: 7\n\n";
  const want: SseEvent[] = [
    { type: "status", data: '{"a":1}' },
    { type: "delta", data: "line one\nline two" },
    { type: "done", data: "x" },
    { type: "message", data: "no type", id: "7" },
  ];

  test("LF, CRLF and CR line ends, comments, multi-line data, default type and id", () => {
    assert.deepEqual(parseAll([wire]), want);
  });

  test("the same events however the text is cut, a CRLF split between chunks included", () => {
    for (let size = 1; size <= wire.length; size++) {
      assert.deepEqual(parseAll(cut(wire, size)), want, `pieces of ${size}`);
    }
  });

  test("events without data and an unfinished last event are dropped; a BOM opens the stream", () => {
    assert.deepEqual(parseAll(["\uFEFFevent: ping\n\n", ": only a comment\n\n", "data: kept\n\n", "data: unfinished\n"]), [
      { type: "message", data: "kept" },
    ]);
    // One space after the colon is dropped, any other is data; a field without a colon is a name.
    assert.deepEqual(parseAll(["data:  two spaces\ndata\nretry: 10\nunknown: x\n\n"]), [
      { type: "message", data: " two spaces\n" },
    ]);
    // A CR as the body's very last byte still ends its line.
    assert.deepEqual(parseAll(["data: last\r\r"]), [{ type: "message", data: "last" }]);
  });
});

describe("readAgentEvents", () => {
  const status = { event: "status", job_id: "job_1", session_id: "ses_1", agent: "claude", is_new_session: true, state: "running" };
  const delta = { event: "delta", kind: "text", text: "héllo ✓ " };
  const done = {
    event: "done", session_id: "ses_1", agent_session_id: null, agent: "claude", job_id: "job_1", response: "héllo ✓ ",
    is_error: false, is_new_session: true, error_code: null, exit_code: 0, cost_usd: null, duration_ms: 5,
  };
  const sse = (e: { event: string }) => `event: ${e.event}\ndata: ${JSON.stringify(e)}\n\n`;
  const read = (chunks: Uint8Array[], type?: string) => collect(readAgentEvents(body(chunks, type), "POST /x"));

  test("typed camelCase events from bytes cut anywhere, inside a UTF-8 character too", async () => {
    const all = bytes(`: ping\n\n${sse(status)}${sse({ event: "future", x: 1 } as { event: string })}${sse(delta)}${sse(done)}`);
    for (const size of [1, 2, 3, 5, 64, all.length]) {
      const chunks = [];
      for (let i = 0; i < all.length; i += size) chunks.push(all.slice(i, i + size));
      const events = (await read(chunks)).map((s) => s.event);
      // The unknown event type is skipped.
      assert.deepEqual(shape(events), ["status:running", "delta:text", "done"], `pieces of ${size}`);
      assert.deepEqual(events[0], { event: "status", jobId: "job_1", sessionId: "ses_1", agent: "claude", isNewSession: true, state: "running" });
      assert.deepEqual(events[1], { event: "delta", kind: "text", text: "héllo ✓ " });
      assert.equal((events[2] as { durationMs: number }).durationMs, 5);
    }
  });

  test("an error event is thrown as an AmikaApiError with its code, details and trace id", async () => {
    const error = {
      event: "error", type: "error", code: "agent_auth_failed", error_code: "agent_auth_failed",
      message: "could not authenticate", trace_id: "abc123",
      details: [{ field: "agent", code: "agent_auth_failed", message: "the agent's words" }],
    };
    const err = await failure(read([bytes(sse(status) + sse(error))]));
    assert.ok(err instanceof AmikaApiError, String(err));
    assert.equal(err.status, 422);
    assert.equal(err.code, "agent_auth_failed");
    assert.equal(err.message, "could not authenticate");
    assert.equal(err.traceId, "abc123");
    assert.equal(err.request, "POST /x");
    assert.deepEqual(err.details, error.details);
    // A send the server lost: a 500-like error with the answer's trace id when the event has none.
    const lost = await failure(read([bytes(sse({ event: "error", code: "internal", message: "lost", trace_id: "" } as { event: string }))]));
    assert.ok(lost instanceof AmikaApiError);
    assert.equal(lost.status, 500);
    assert.equal(lost.traceId, "trace-from-header");
  });

  test("a body that ends before the answer, or is not an event stream, is an error", async () => {
    const cutShort = await failure(read([bytes(sse(status) + sse(delta))]));
    assert.ok(cutShort instanceof AmikaNetworkError, String(cutShort));
    assert.match(cutShort.message, /ended before the agent's answer/);
    const html = await failure(read([bytes("<html>proxy</html>")], "text/html"));
    assert.ok(html instanceof AmikaError && !(html instanceof AmikaApiError), String(html));
    assert.match(html.message, /answered text\/html instead of text\/event-stream/);
    const garbled = await failure(read([bytes("event: status\ndata: {not json\n\n")]));
    assert.ok(garbled instanceof AmikaError);
    assert.match(garbled.message, /bad status event/);
  });
});
