/**
 * The SDK against a real `amika server` (SQLite, bubblewrap sandboxes) started by this file:
 * the flow of the README, every error case, URL-encoding of names, exec streaming, api keys and
 * audit events. No HTTP mocks.
 */
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { format } from "node:util";

import {
  AmikaApiError,
  AmikaClient,
  AmikaError,
  AmikaNetworkError,
  AmikaSandboxFailedError,
  AmikaTimeoutError,
  type AgentKind,
  type ExecFrame,
} from "../src/index.js";
import { repoRoot, startServer, type TestServer } from "./server.js";

let server: TestServer;
let amika: AmikaClient;

const DATABASE_URL_VALUE = "postgres://app:s3cr3t-pw-for-sdk-test@db.internal:5432/app";
const OAUTH_ACCESS_TOKEN = "sk-ant-oat01-sdk-test-access-token-0123456789";
const oauthJson = JSON.stringify({
  claudeAiOauth: {
    accessToken: OAUTH_ACCESS_TOKEN,
    refreshToken: "sk-ant-ort01-sdk-test-refresh-token-9876543210",
    expiresAt: Date.now() + 24 * 3600 * 1000,
    scopes: ["user:inference"],
  },
});

before(async () => {
  server = await startServer();
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
});

after(async () => {
  // Sandboxes a failed test left behind, then the server and its temp dir.
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
    assert.ok(e instanceof AmikaApiError, `expected AmikaApiError, got ${String(e)}`);
    assert.ok(e instanceof AmikaError);
    assert.equal(e.status, want.status, e.message);
    assert.equal(e.code, want.code, e.message);
    assert.match(e.message, want.message);
    assert.match(e.traceId, /^[0-9a-f]{32}$/, `trace id ${e.traceId}`);
    // The trace id ties the answer to the server's log line for the request.
    assert.ok(server.log().includes(e.traceId), `trace id ${e.traceId} not in the server log`);
    return e;
  }
  assert.fail(`expected a ${want.status} ${want.code} error, but the call succeeded`);
}

async function withSandbox<T>(name: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } finally {
    await amika.deleteSandbox(name).catch(() => {});
  }
}

describe("the flow of the issue", () => {
  test("secret, default claude credential, sandbox, and the resolved credentials per kind", async () => {
    await withSandbox("dev-box", async () => {
      // As in the issue, line for line.
      await amika.createSecret({ name: "DATABASE_URL", value: DATABASE_URL_VALUE, scope: "user" });
      await amika.createProviderSecret("claude", { name: "personal-oauth", type: "oauth", value: oauthJson });
      const created = await amika.createSandbox({
        name: "dev-box",
        secretEnvVars: { DATABASE_URL: "DATABASE_URL" },
        agentCredentials: [{ kind: "claude" }, { kind: "codex", none: true }],
      });
      assert.equal(created.name, "dev-box");
      assert.ok(["initializing", "running"].includes(created.state), created.state);
      const sb = await amika.getSandbox("dev-box");
      const lines: string[] = [];
      for (const c of sb.resolvedAgentCredentials ?? []) {
        console.log(c.kind, c.outcome, c.name, c.source, c.reason);
        lines.push(format(c.kind, c.outcome, c.name, c.source, c.reason));
      }
      assert.deepEqual(lines, [
        "claude resolved personal-oauth user_default ",
        "codex skipped  no-credential no-agent-credential flag",
      ]);
      assert.deepEqual(sb.resolvedAgentCredentials[0], {
        kind: "claude",
        outcome: "resolved",
        name: "personal-oauth",
        type: "oauth",
        source: "user_default",
        reason: "",
      });
      // camelCase in TypeScript; the env var name (a map key) is passed through unchanged.
      assert.deepEqual(sb.secretNames, ["DATABASE_URL"]);
      assert.equal(sb.errorMessage ?? null, null);
      assert.ok("providerSandboxId" in sb && !("provider_sandbox_id" in sb));

      const ready = await amika.waitUntilReady("dev-box", { timeoutMs: 30_000 });
      assert.equal(ready.state, "running");
      assert.equal(ready.id, sb.id);
      assert.ok((await amika.listSandboxes()).some((s) => s.id === sb.id));

      // The injected variable is there, and its value is redacted in relayed output.
      const env = await amika.exec("dev-box", ["env"]);
      assert.equal(env.exitCode, 0, env.stderr);
      assert.match(env.stdout, /^DATABASE_URL=\[REDACTED:DATABASE_URL\]$/m);
      assert.ok(!env.stdout.includes(DATABASE_URL_VALUE), "secret value leaked through exec");
      const cred = await amika.exec("dev-box", ["cat", "/home/amika/.claude/.credentials.json"]);
      assert.equal(cred.exitCode, 0, cred.stderr);
      assert.match(cred.stdout, /\[REDACTED:personal-oauth\]/);
      assert.ok(!cred.stdout.includes(OAUTH_ACCESS_TOKEN), "oauth token leaked through exec");
      // By id as well as by name.
      assert.equal((await amika.exec(sb.id, ["true"])).exitCode, 0);
    });
    await expectApiError(amika.getSandbox("dev-box"), {
      status: 404,
      code: "not_found",
      message: /dev-box/,
    });
  });

  test("resolvePreview answers what a create would resolve to, creating nothing", async () => {
    const preview = await amika.resolvePreview({
      name: "preview-box",
      secretEnvVars: { PGURL: "DATABASE_URL" },
      agentCredentials: [{ kind: "claude", name: "personal-oauth" }, { kind: "codex" }],
    });
    assert.deepEqual(preview, {
      secretNames: ["DATABASE_URL"],
      resolvedAgentCredentials: [
        { kind: "claude", outcome: "resolved", name: "personal-oauth", type: "oauth", source: "request:name", reason: "" },
        { kind: "codex", outcome: "skipped", name: "", type: "", source: "no-credential", reason: "no stored credential" },
      ],
      // No repository, so no `.amika/config.toml` to contribute anything.
      repoConfig: null,
      warnings: [],
    });
    assert.ok(!(await amika.listSandboxes()).some((s) => s.name === "preview-box"));
  });
});

describe("sandbox lifecycle and exec", () => {
  test("exec streams frames, collects output and exit code, and follows stop and start", async () => {
    await withSandbox("life-box", async () => {
      await amika.createSandbox({ name: "life-box", network: "none" });
      await amika.waitUntilReady("life-box", { timeoutMs: 30_000 });

      const frames: ExecFrame[] = [];
      for await (const f of amika.execStream("life-box", ["sh", "-c", "echo out; echo err >&2; exit 3"])) {
        frames.push(f);
      }
      const text = (s: "stdout" | "stderr") =>
        frames.map((f) => (f.stream === s ? f.data : "")).join("");
      assert.equal(text("stdout"), "out\n");
      assert.equal(text("stderr"), "err\n");
      assert.deepEqual(frames.at(-1), { stream: "exit", code: 3 });

      // A non-zero exit is a result, not an error.
      assert.deepEqual(await amika.exec("life-box", ["sh", "-c", "echo hi; echo oops >&2; exit 7"]), {
        stdout: "hi\n",
        stderr: "oops\n",
        exitCode: 7,
      });
      const pwd = await amika.exec("life-box", ["pwd"], { cwd: "/tmp" });
      assert.equal(pwd.stdout, "/tmp\n");

      // Leaving the loop early closes the stream (and the server kills the command).
      let seen = 0;
      for await (const f of amika.execStream("life-box", ["sh", "-c", "while true; do echo tick; sleep 0.05; done"])) {
        if (f.stream === "stdout") seen++;
        if (seen >= 2) break;
      }
      assert.ok(seen >= 2);

      await amika.stopSandbox("life-box");
      assert.equal((await amika.getSandbox("life-box")).state, "stopped");
      await expectApiError(amika.exec("life-box", ["true"]), {
        status: 409,
        code: "invalid_state",
        message: /life-box|stopped/,
      });
      // A stopped sandbox does not become ready on its own.
      const waitErr = await amika
        .waitUntilReady("life-box", { timeoutMs: 300, intervalMs: 50 })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(waitErr instanceof AmikaTimeoutError, String(waitErr));
      assert.equal(waitErr.sandbox.state, "stopped");
      assert.match(waitErr.message, /life-box is not running after 300 ms \(state stopped\)/);

      await amika.startSandbox("life-box");
      await amika.waitUntilReady("life-box", { timeoutMs: 30_000 });
      assert.equal((await amika.exec("life-box", ["echo", "again"])).stdout, "again\n");
      await amika.deleteSandbox("life-box");
      assert.ok(!(await amika.listSandboxes()).some((s) => s.name === "life-box"));
    });
  });

  test("waitUntilReady reports a failed sandbox with the server's error message", async () => {
    await withSandbox("doomed-box", async () => {
      const sb = await amika.createSandbox({ name: "doomed-box", network: "none" });
      await amika.waitUntilReady("doomed-box", { timeoutMs: 30_000 });
      await amika.stopSandbox("doomed-box");
      // Break the sandbox's files on the host (a file where its home directory must be), so
      // the real provider fails to start it again.
      const home = join(server.dataDir, "sandboxes", sb.id, "home");
      await rm(home, { recursive: true, force: true });
      await writeFile(home, "not a directory");
      await amika.startSandbox("doomed-box").catch((e: unknown) => {
        assert.ok(e instanceof AmikaApiError, String(e));
      });
      const err = await amika
        .waitUntilReady("doomed-box", { timeoutMs: 30_000 })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof AmikaSandboxFailedError, String(err));
      assert.equal(err.sandbox.state, "failed");
      assert.ok(err.sandbox.errorMessage, "a failed sandbox carries its error message");
      assert.equal(err.message, `sandbox doomed-box failed: ${err.sandbox.errorMessage}`);
    });
  });
});

describe("error cases", () => {
  test("401: a bad access token", async () => {
    const bad = new AmikaClient({ baseUrl: server.url, accessToken: "amk_not-a-real-key" });
    await expectApiError(bad.listSecrets(), {
      status: 401,
      code: "unauthorized",
      message: /missing or invalid API key/,
    });
  });

  test("404: an unknown sandbox", async () => {
    await expectApiError(amika.getSandbox("no-such-box"), {
      status: 404,
      code: "not_found",
      message: /sandbox "no-such-box"/,
    });
    await expectApiError(amika.deleteSandbox("no-such-box"), {
      status: 404,
      code: "not_found",
      message: /no-such-box/,
    });
  });

  test("409: a duplicate secret", async () => {
    await amika.createSecret({ name: "DUP_SECRET", value: "first" });
    await expectApiError(amika.createSecret({ name: "DUP_SECRET", value: "second" }), {
      status: 409,
      code: "secret_exists",
      message: /"DUP_SECRET" already exists/,
    });
  });

  test("422: secret_not_found and agent_credential_not_found, creating nothing", async () => {
    const secretError = await expectApiError(
      amika.createSandbox({ name: "bad-secret-box", secretEnvVars: { MY_DB: "MISSING_SECRET" } }),
      { status: 422, code: "secret_not_found", message: /MY_DB.*MISSING_SECRET/ },
    );
    // The field it is about, as a path into the wire request.
    assert.deepEqual(secretError.details, [
      { field: "secret_env_vars.MY_DB", code: "secret_not_found", message: secretError.message },
    ]);
    const credentialError = await expectApiError(
      amika.createSandbox({ name: "bad-cred-box", agentCredentials: [{ kind: "codex", name: "nope" }] }),
      { status: 422, code: "agent_credential_not_found", message: /nope/ },
    );
    assert.equal(credentialError.details[0]?.field, "agent_credentials[0].name");
    const names = (await amika.listSandboxes()).map((s) => s.name);
    assert.ok(!names.includes("bad-secret-box") && !names.includes("bad-cred-box"), String(names));
  });

  test("400: an unknown field; 405: an unknown agent kind (/secrets/{id} is a secret's URL)", async () => {
    const untyped = { name: "COLOUR", value: "v", colour: "red" } as unknown as Parameters<
      AmikaClient["createSecret"]
    >[0];
    await expectApiError(amika.createSecret(untyped), {
      status: 400,
      code: "invalid_request",
      message: /colour/,
    });
    await expectApiError(amika.listProviderSecrets("gemini" as AgentKind), {
      status: 405,
      code: "unknown_kind",
      message: /"gemini".*claude, codex or github/,
    });
    await expectApiError(
      amika.createSandbox({ name: "two-claudes", agentCredentials: [{ kind: "claude" }, { kind: "claude" }] }),
      { status: 400, code: "invalid_agent_credentials", message: /lists claude twice/ },
    );
    await expectApiError(
      amika.createSandbox({ name: "both", agentCredentials: [{ kind: "codex", none: true, name: "x" }] }),
      { status: 400, code: "invalid_agent_credentials", message: /none: true cannot be combined/ },
    );
  });

  test("a network failure is an AmikaNetworkError, not an API error", async () => {
    // A port that was free a moment ago and is closed now.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const offline = new AmikaClient({ baseUrl: `http://127.0.0.1:${port}`, accessToken: "amk_x" });
    const err = await offline.listSandboxes().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof AmikaNetworkError, String(err));
    assert.ok(!(err instanceof AmikaApiError));
    assert.match(err.message, /cannot reach the amika server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED/);
    assert.match(err.request, /^GET http:\/\/127\.0\.0\.1:\d+\/api\/v0beta1\/sandboxes\?limit=500$/);
    // The same for the streaming exec.
    const streamErr = await offline.exec("x", ["true"]).then(() => undefined, (e: unknown) => e);
    assert.ok(streamErr instanceof AmikaNetworkError, String(streamErr));
  });

  test("bad client input is rejected before any request", async () => {
    assert.throws(() => new AmikaClient({ baseUrl: "not a url", accessToken: "amk_x" }), /not a URL/);
    assert.throws(() => new AmikaClient({ baseUrl: server.url, accessToken: "" }), /accessToken is required/);
    // Empty, `.` and `..` cannot be a path segment (`..` would be resolved away by the URL).
    for (const id of ["", ".", ".."]) {
      await assert.rejects(amika.getSandbox(id), (e: unknown) => {
        assert.ok(e instanceof AmikaError && !(e instanceof AmikaApiError), String(e));
        assert.equal(e.message, `invalid id ${JSON.stringify(id)}: expected a non-empty id or name`);
        return true;
      });
    }
    await assert.rejects(amika.deleteProviderSecret("claude", ""), /invalid id ""/);
  });
});

describe("names in paths are URL-encoded", () => {
  test("a secret named team.key-1: update, reveal, delete by name", async () => {
    const s = await amika.createSecret({ name: "team.key-1", value: "v1", description: "dots and dashes" });
    assert.equal(s.name, "team.key-1");
    assert.equal(s.version, 1);
    const updated = await amika.updateSecret("team.key-1", { value: "v2" });
    assert.equal(updated.version, 2);
    assert.equal(updated.description, "dots and dashes");
    assert.equal(await amika.revealSecret("team.key-1"), "v2");
    await amika.deleteSecret("team.key-1");
    assert.ok(!(await amika.listSecrets()).some((x) => x.name === "team.key-1"));
  });

  test("reserved characters reach the server inside one path segment", async () => {
    // Unencoded, `/`, `?` and `#` would change the route; encoded, the server names them.
    await expectApiError(amika.getSandbox("no such/box?x=1#y"), {
      status: 404,
      code: "not_found",
      message: /sandbox "no such\/box\?x=1#y"/,
    });
    await expectApiError(amika.deleteProviderSecret("claude", "a/b%c"), {
      status: 404,
      code: "not_found",
      message: /a\/b%c/,
    });
    await expectApiError(amika.updateSecret("x/../../api-keys", { value: "v" }), {
      status: 404,
      code: "not_found",
      message: /x\/\.\.\/\.\.\/api-keys/,
    });
  });
});

describe("agent credentials", () => {
  test("create (api-key spelling), list, update, reveal, pin by type, delete", async () => {
    const c = await amika.createProviderSecret("codex", {
      name: "work-key",
      type: "api-key",
      value: "sk-sdk-test-codex-key-0123456789",
    });
    assert.equal(c.type, "api_key");
    assert.equal(c.kind, "codex");
    assert.equal(c.isDefault, false);
    assert.equal(c.expiresAt, null);
    assert.ok((await amika.listProviderSecrets("codex")).some((x) => x.id === c.id));

    const d = await amika.updateProviderSecret("codex", "work-key", { isDefault: true });
    assert.equal(d.isDefault, true);
    assert.equal(d.version, 1);
    const v2 = await amika.updateProviderSecret("codex", c.id, { value: "sk-sdk-test-codex-key-v2" });
    assert.equal(v2.version, 2);
    assert.equal(await amika.revealProviderSecret("codex", "work-key"), "sk-sdk-test-codex-key-v2");

    const preview = await amika.resolvePreview({
      name: "p",
      agentCredentials: [{ kind: "codex", type: "api-key" }],
    });
    assert.deepEqual(preview.resolvedAgentCredentials, [
      { kind: "codex", outcome: "resolved", name: "work-key", type: "api_key", source: "request:type", reason: "" },
    ]);

    await amika.deleteProviderSecret("codex", "work-key");
    assert.ok(!(await amika.listProviderSecrets("codex")).some((x) => x.id === c.id));
    await expectApiError(amika.deleteProviderSecret("codex", "work-key"), {
      status: 404,
      code: "not_found",
      message: /work-key/,
    });
  });

  test("the credential marked default wins the default order", async () => {
    await amika.createProviderSecret("codex", { name: "older", type: "oauth", value: '{"tokens":{}}' });
    await amika.createProviderSecret("codex", {
      name: "marked",
      type: "api_key",
      value: "sk-sdk-test-marked",
      isDefault: true,
    });
    const preview = await amika.resolvePreview({ name: "p", agentCredentials: [{ kind: "codex" }] });
    assert.deepEqual(preview.resolvedAgentCredentials.map((c) => [c.name, c.source]), [
      ["marked", "user_default"],
    ]);
  });
});

describe("api keys and audit events", () => {
  test("create a key, use it, list it (camelCase wire), delete it", async () => {
    const key = await amika.createApiKey({ name: "sdk-ci" });
    assert.match(key.value, /^amk_/);
    assert.equal(key.name, "sdk-ci");
    assert.ok(key.obfuscatedValue && !key.obfuscatedValue.includes(key.value));
    const other = new AmikaClient({ baseUrl: server.url, accessToken: key.value });
    const me = await other.me();
    assert.equal(me.isAdmin, true);
    const list = await amika.listApiKeys();
    assert.equal(typeof list.pageInfo.hasNextPage, "boolean");
    const listed = list.data.find((k) => k.id === key.id);
    assert.ok(listed, "new key is listed");
    assert.ok(!("value" in listed));
    assert.ok(!JSON.stringify(list).includes(key.value), "a key's value is never listed");
    await amika.deleteApiKey(key.id);
    assert.ok(!(await amika.listApiKeys()).data.some((k) => k.id === key.id));
    await expectApiError(other.me(), { status: 401, code: "unauthorized", message: /API key/ });
  });

  test("audit events: newest first, limited, details unchanged, never a value", async () => {
    const events = await amika.listAuditEvents({ limit: 1000 });
    const actions = events.map((e) => e.action);
    for (const a of ["secret.created", "sandbox.created", "secret.injected", "credential.injected"]) {
      assert.ok(actions.includes(a), `${a} in ${actions}`);
    }
    const created = events.find((e) => e.action === "secret.created" && e.objectName === "DATABASE_URL");
    assert.ok(created, "secret.created for DATABASE_URL");
    assert.equal(created.objectType, "secret");
    const injected = events.find((e) => e.action === "secret.injected" && e.objectName === "DATABASE_URL");
    assert.deepEqual(injected?.detail, { env: "DATABASE_URL" });
    const sandboxCreated = events.find((e) => e.action === "sandbox.created" && e.objectName === "dev-box");
    // `detail` is free-form: its keys stay as the server wrote them.
    const secrets = (sandboxCreated?.detail as { secrets?: Record<string, unknown>[] }).secrets;
    assert.ok(secrets?.some((s) => "secret_id" in s && s.env === "DATABASE_URL"), JSON.stringify(sandboxCreated));
    const times = events.map((e) => Date.parse(e.createdAt));
    assert.deepEqual(times, [...times].sort((a, b) => b - a));
    const all = JSON.stringify(events);
    for (const value of [DATABASE_URL_VALUE, OAUTH_ACCESS_TOKEN, "sk-sdk-test-codex-key"]) {
      assert.ok(!all.includes(value), "an audit event carries a value");
    }
    assert.equal((await amika.listAuditEvents({ limit: 2 })).length, 2);
  });
});

test("the served /openapi.json is the checked-in docs/openapi.json", async () => {
  const served: unknown = await (await fetch(`${server.url}/openapi.json`)).json();
  const checkedIn: unknown = JSON.parse(await readFile(join(repoRoot, "docs/openapi.json"), "utf8"));
  assert.deepEqual(served, checkedIn);
});
