/**
 * The sessions API through the SDK against a real `amika server` (SQLite, bubblewrap
 * sandboxes): `createSession`, `listSessions`, `getLatestSession`, `getSession`,
 * `updateSession`, and `agentSend` with `workdir`. No HTTP mocks.
 *
 * The agent is the repository's *stand-in* `claude` (`crates/cli/tests/fixtures/fake-claude.sh`,
 * a test script, not the real CLI, which cannot reach its provider here), installed in the
 * sandbox's `~/.local/bin`. It echoes the message and prints the directory it ran in.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { AmikaApiError, AmikaClient } from "../src/index.js";
import { repoRoot, startServer, type TestServer } from "./server.js";

let server: TestServer;
let amika: AmikaClient;

const CLAUDE_KEY = "sk-ant-api03-SDKSESSIONKEY-1f2e3d4c5b";
const DB_URL = "postgres://app:sdk-session-db-pw-6a7b@db:5432/app";

before(async () => {
  server = await startServer();
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
  await amika.createProviderSecret("claude", { name: "key", type: "api_key", value: CLAUDE_KEY, isDefault: true });
  await amika.createSecret({ name: "DATABASE_URL", value: DB_URL });
  await amika.createSandbox({
    name: "ses-box",
    secretEnvVars: { DATABASE_URL: "DATABASE_URL" },
    agentCredentials: [{ kind: "claude", name: "key" }, { kind: "codex", none: true }],
  });
  await amika.waitUntilReady("ses-box", { timeoutMs: 30_000 });
  const script = await readFile(join(repoRoot, "crates", "cli", "tests", "fixtures", "fake-claude.sh"), "utf8");
  const r = await amika.exec("ses-box", [
    "sh",
    "-c",
    `mkdir -p "$HOME/.local/bin" /tmp/elsewhere && printf '%s' "$1" > "$HOME/.local/bin/claude" && chmod 755 "$HOME/.local/bin/claude"`,
    "install-stand-in-agent",
    script,
  ]);
  assert.equal(r.exitCode, 0, r.stderr);
});

after(async () => {
  await amika?.deleteSandbox("ses-box").catch(() => {});
  await server?.stop();
});

test("sessions: create, list, latest, get, update; sends continue the latest", async () => {
  assert.equal(await amika.getLatestSession("ses-box"), null, "no session yet");
  // A missing sandbox is still an error, not "no session".
  await assert.rejects(amika.getLatestSession("no-such-box"), (e: unknown) => e instanceof AmikaApiError && e.status === 404);

  // Metadata keys go and come back as given (not camelCased, not snake_cased).
  const metadata = { ticketId: "ENG-1", snake_key: { innerKey: [1, "two"] } };
  const created = await amika.createSession("ses-box", { agentName: "claude", metadata });
  assert.match(created.id, /^ses/);
  assert.equal(created.agentName, "claude");
  assert.equal(created.status, "idle");
  assert.equal(created.endedAt, null);
  assert.deepEqual(created.metadata, metadata);
  assert.deepEqual(created.serverMetadata, { credential: "key" });
  assert.equal(created.sandboxId, (await amika.getSandbox("ses-box")).id);
  assert.equal(created.orgId, (await amika.me()).orgId);

  assert.deepEqual((await amika.listSessions("ses-box")).sessions, [created]);
  assert.deepEqual(await amika.getLatestSession("ses-box"), created);
  assert.equal(await amika.getLatestSession("ses-box", { agent: "codex" }), null);

  // No sessionId: the send continues the latest session, the created one.
  const first = await amika.agentSend("ses-box", { message: "hello", workdir: "/tmp/elsewhere" });
  assert.equal(first.isError, false, first.response);
  assert.equal(first.sessionId, created.id);
  assert.match(first.response, /^echo: hello\n/);
  assert.match(first.response, /\ncwd: \/tmp\/elsewhere$/);
  const fresh = await amika.agentSend("ses-box", { message: "another", newSession: true });
  assert.notEqual(fresh.sessionId, created.id);
  assert.equal((await amika.getLatestSession("ses-box"))?.id, fresh.sessionId);

  const updated = await amika.updateSession("ses-box", created.id, {
    status: "completed",
    metadata: { ticketId: null, owner: "alice" },
  });
  assert.equal(updated.status, "completed");
  assert.ok(updated.endedAt, "completed sets endedAt");
  assert.deepEqual(updated.metadata, { snake_key: { innerKey: [1, "two"] }, owner: "alice" });
  const got = await amika.getSession("ses-box", created.id);
  assert.equal(got.status, "completed");
  assert.deepEqual(got.metadata, updated.metadata);
  assert.deepEqual(got.transcript?.map((t) => t.message), ["hello"]);

  await assert.rejects(
    amika.updateSession("ses-box", created.id, { status: "paused" as "idle" }),
    (e: unknown) => e instanceof AmikaApiError && e.status === 400 && /status/.test(e.message),
  );
  await assert.rejects(
    amika.createSession("ses-box", { agentName: "codex" }),
    (e: unknown) => e instanceof AmikaApiError && e.status === 422,
  );
});

test("no injected value comes back in a session's metadata or transcript", async () => {
  const s = await amika.createSession("ses-box", { agentName: "claude", metadata: { db: DB_URL } });
  await amika.updateSession("ses-box", s.id, { metadata: { key: `the key is ${CLAUDE_KEY}` } });
  const r = await amika.agentSend("ses-box", { message: `echo-credential ${DB_URL}`, sessionId: s.id });
  assert.equal(r.isError, false, r.response);
  const got = await amika.getSession("ses-box", s.id);
  assert.deepEqual(got.metadata, { db: "[REDACTED:DATABASE_URL]", key: "the key is [REDACTED:key]" });
  const everything = JSON.stringify([got, await amika.listSessions("ses-box"), r]);
  for (const value of [CLAUDE_KEY, DB_URL]) {
    assert.ok(!everything.includes(value), `${value} came back`);
  }
});
