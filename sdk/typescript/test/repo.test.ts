/**
 * Repositories in sandboxes, through the SDK against a real `amika server`: a `file://` bare
 * repository cloned by the server (the admin key may clone from the server's disk), its
 * `.amika/config.toml` applied under the request's own fields, a setup script and its log, a
 * `git bundle` uploaded with `uploadWorkspace`, sizes and idle intervals, and the `github`
 * credential kind. Real git, real sandboxes; no HTTP mocks.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  AmikaApiError,
  AmikaClient,
  AmikaSandboxFailedError,
  type ExecFrame,
} from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

let server: TestServer;
let amika: AmikaClient;
let dir: string;
/** A checkout with `main` and `feature`, and the bare repository cloned from it. */
let work: string;
let bareUrl: string;
let featureCommit: string;

const GITHUB_TOKEN = "ghp_sdkTestToken0123456789abcdefABCDEF";

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=SDK Test", "-c", "user.email=sdk@test.invalid", ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

async function makeRepository(): Promise<void> {
  work = join(dir, "work");
  await mkdir(join(work, ".amika"), { recursive: true });
  await mkdir(join(work, "scripts"), { recursive: true });
  git(work, "init", "-q", "-b", "main");
  await writeFile(join(work, "README.md"), "hello from main\n");
  await writeFile(
    join(work, ".amika", "config.toml"),
    [
      "[env]",
      'NODE_ENV = "development"',
      'FROM_REPO = "repo-value"',
      "[lifecycle]",
      'setup_script = "scripts/setup.sh"',
      "",
    ].join("\n"),
  );
  await writeFile(
    join(work, "scripts", "setup.sh"),
    '#!/bin/sh\necho "setup in $(pwd): NODE_ENV=$NODE_ENV FROM_REPO=$FROM_REPO GREETING=$GREETING"\necho ok > .setup-done\n',
  );
  git(work, "add", "-A");
  git(work, "commit", "-q", "-m", "main");
  git(work, "checkout", "-q", "-b", "feature");
  await writeFile(join(work, "README.md"), "hello from feature\n");
  git(work, "commit", "-q", "-am", "feature");
  featureCommit = git(work, "rev-parse", "HEAD");
  git(work, "checkout", "-q", "main");
  git(dir, "clone", "-q", "--bare", work, join(dir, "repo.git"));
  bareUrl = `file://${join(dir, "repo.git")}`;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "amika-sdk-repo-"));
  await makeRepository();
  server = await startServer();
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
});

after(async () => {
  if (amika) {
    for (const sb of await amika.listSandboxes().catch(() => [])) {
      await amika.deleteSandbox(sb.id).catch(() => {});
    }
  }
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function frames(it: AsyncIterable<ExecFrame>): Promise<ExecFrame[]> {
  const out: ExecFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

function output(fs: ExecFrame[]): string {
  return fs.map((f) => ("data" in f ? f.data : "")).join("");
}

async function apiError(p: Promise<unknown>): Promise<AmikaApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AmikaApiError, `expected AmikaApiError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected an API error, but the call succeeded");
}

describe("a repository cloned by the server", () => {
  test("resolvePreview lists what .amika/config.toml contributes under the request's own fields", async () => {
    const preview = await amika.resolvePreview({
      repoUrl: bareUrl,
      envVars: { FROM_REPO: "request-wins" },
      agentCredentials: [],
    });
    assert.deepEqual(preview.repoConfig, {
      envVars: ["NODE_ENV"],
      secretEnvVars: [],
      agentCredentials: [],
      setupScript: "scripts/setup.sh",
    });
    assert.deepEqual(await amika.listSandboxes(), [], "a preview creates nothing");
    // Without a repository there is nothing to contribute.
    assert.equal((await amika.resolvePreview({ agentCredentials: [] })).repoConfig, null);
  });

  test("create on a new branch: env precedence, size, idle interval, setup outcome and its log", async () => {
    const created = await amika.createSandbox({
      name: "repo-box",
      repoUrl: bareUrl,
      branch: "feature",
      newBranchName: "work-1",
      envVars: { GREETING: "hello there", FROM_REPO: "request-wins" },
      size: "xs",
      autoStopInterval: 30,
      agentCredentials: [],
    });
    assert.equal(created.name, "repo-box");
    const sb = await amika.waitUntilReady("repo-box", { timeoutMs: 60_000 });
    assert.equal(sb.repoName, "repo");
    assert.equal(sb.repoUrl, bareUrl);
    assert.equal(sb.branch, "work-1");
    assert.equal(sb.commitHash, featureCommit);
    // Env var names are map keys: sent and returned unchanged.
    assert.deepEqual(sb.envVars, {
      FROM_REPO: "request-wins",
      GREETING: "hello there",
      NODE_ENV: "development",
    });
    assert.deepEqual(sb.repoConfig, {
      envVars: ["NODE_ENV"],
      secretEnvVars: [],
      agentCredentials: [],
      setupScript: "scripts/setup.sh",
    });
    assert.equal(sb.size, "xs");
    assert.equal(sb.memoryMib, 512);
    assert.equal(sb.pids, 256);
    assert.equal(sb.autoStopInterval, 30);
    assert.equal(sb.autoDeleteInterval, null);
    assert.ok(sb.setup, "the repository's setup script ran");
    assert.equal(sb.setup.source, "repo_config");
    assert.equal(sb.setup.script, "scripts/setup.sh");
    assert.equal(sb.setup.state, "succeeded");
    assert.equal(sb.setup.exitCode, 0);
    assert.ok(sb.setup.startedAt && sb.setup.endedAt);

    const log = await frames(amika.setupLog("repo-box"));
    assert.match(
      output(log),
      /setup in \/home\/amika\/workspace\/repo: NODE_ENV=development FROM_REPO=request-wins GREETING=hello there/,
    );
    assert.deepEqual(log.at(-1), { stream: "exit", code: 0 });
    // Following a finished log ends with the same frames.
    assert.deepEqual(await frames(amika.setupLog(sb.id, { follow: true })), log);

    const head = await amika.exec("repo-box", ["sh", "-c", "git rev-parse --abbrev-ref HEAD && cat README.md .setup-done"], {
      cwd: "/home/amika/workspace/repo",
    });
    assert.equal(head.exitCode, 0, head.stderr);
    assert.equal(head.stdout, "work-1\nhello from feature\nok\n");
    await amika.deleteSandbox("repo-box");
  });

  test("a failing setup script leaves the sandbox failed with its exit code and last lines", async () => {
    await amika.createSandbox({
      name: "failing-setup",
      repoUrl: bareUrl,
      setupScriptText: "echo about to fail\necho on stderr >&2\nexit 3\n",
      agentCredentials: [],
    });
    try {
      await amika.waitUntilReady("failing-setup", { timeoutMs: 60_000 });
      assert.fail("the sandbox became ready");
    } catch (e) {
      assert.ok(e instanceof AmikaSandboxFailedError, String(e));
      assert.match(e.sandbox.errorMessage ?? "", /setup script exited with 3/);
      assert.match(e.sandbox.errorMessage ?? "", /about to fail/);
      assert.equal(e.sandbox.setup?.source, "request");
      assert.equal(e.sandbox.setup?.state, "failed");
      assert.equal(e.sandbox.setup?.exitCode, 3);
    }
    const log = await frames(amika.setupLog("failing-setup"));
    assert.ok(log.some((f) => f.stream === "stderr" && f.data.includes("on stderr")), JSON.stringify(log));
    assert.deepEqual(log.at(-1), { stream: "exit", code: 3 });
    await amika.deleteSandbox("failing-setup");
  });

  test("bad repository input is an error naming its field; a sandbox without setup has no log", async () => {
    let e = await apiError(amika.createSandbox({ name: "x", repoUrl: bareUrl, branch: "-bad", agentCredentials: [] }));
    assert.equal(e.status, 400);
    assert.equal(e.details[0]?.field, "branch");
    e = await apiError(amika.createSandbox({ name: "x", branch: "main", agentCredentials: [] }));
    assert.equal(e.details[0]?.field, "branch");
    assert.match(e.message, /needs a repository/);
    e = await apiError(amika.createSandbox({ name: "x", size: "xxl" as never, agentCredentials: [] }));
    assert.equal(e.status, 400);
    assert.match(e.message, /xs, s, m, l or xl/);
    assert.deepEqual(await amika.listSandboxes(), []);

    await amika.createSandbox({ name: "plain-box", agentCredentials: [] });
    e = await apiError(frames(amika.setupLog("plain-box")));
    assert.equal(e.status, 404);
    assert.match(e.message, /ran no setup script/);
    await amika.deleteSandbox("plain-box");
  });
});

describe("uploadWorkspace", () => {
  test("a git bundle becomes the workspace of the sandbox that names it, once", async () => {
    const bundlePath = join(dir, "work.bundle");
    git(work, "bundle", "create", "-q", bundlePath, "--all");
    const bytes = new Uint8Array(await readFile(bundlePath));
    const upload = await amika.uploadWorkspace(bytes, {
      repoName: "uploaded",
      originUrl: "https://git.example.invalid/team/uploaded.git",
    });
    assert.match(upload.id, /\S/);
    assert.equal(upload.repoName, "uploaded");
    assert.equal(upload.originUrl, "https://git.example.invalid/team/uploaded.git");
    assert.equal(upload.sizeBytes, bytes.byteLength);
    assert.ok(Date.parse(upload.expiresAt) > Date.now());

    await amika.createSandbox({
      name: "upload-box",
      workspaceUpload: upload.id,
      branch: "feature",
      skipSetupScript: true,
      agentCredentials: [],
    });
    const sb = await amika.waitUntilReady("upload-box", { timeoutMs: 60_000 });
    assert.equal(sb.repoName, "uploaded");
    assert.equal(sb.repoUrl, "https://git.example.invalid/team/uploaded.git");
    assert.equal(sb.branch, "feature");
    assert.equal(sb.commitHash, featureCommit);
    assert.equal(sb.setup?.state, "skipped", "skipSetupScript: the repository's script did not run");
    const readme = await amika.exec("upload-box", ["cat", "/home/amika/workspace/uploaded/README.md"]);
    assert.equal(readme.stdout, "hello from feature\n");

    // A create consumes its upload.
    const e = await apiError(
      amika.createSandbox({ name: "again", workspaceUpload: upload.id, agentCredentials: [] }),
    );
    assert.equal(e.details[0]?.field, "workspace_upload");
    await amika.deleteSandbox("upload-box");
  });

  test("a bad repository name is refused before anything is kept", async () => {
    const e = await apiError(amika.uploadWorkspace(new Uint8Array([1, 2, 3]), { repoName: "../escape" }));
    assert.equal(e.status, 400);
    assert.equal(e.details[0]?.field, "repo_name");
  });
});

describe("the github credential kind", () => {
  test("pushed as api_key, listed and deleted; oauth is refused; never an agent credential", async () => {
    const created = await amika.createProviderSecret("github", { name: "gh", type: "api-key", value: GITHUB_TOKEN });
    assert.equal(created.kind, "github");
    assert.equal(created.type, "api_key");
    const listed = await amika.listProviderSecrets("github");
    assert.deepEqual(listed.map((c) => [c.name, c.type]), [["gh", "api_key"]]);
    assert.ok(!JSON.stringify(listed).includes(GITHUB_TOKEN), "no value in a listing");

    const e = await apiError(amika.createProviderSecret("github", { name: "gh-oauth", type: "oauth", value: "{}" }));
    assert.equal(e.details[0]?.field, "type");
    assert.match(e.message, /a github credential is a token/);

    const notAgent = await apiError(
      amika.createSandbox({ name: "x", agentCredentials: [{ kind: "github" }] }),
    );
    assert.equal(notAgent.status, 400);
    assert.match(notAgent.message, /not an agent/);

    await amika.deleteProviderSecret("github", "gh");
    assert.deepEqual(await amika.listProviderSecrets("github"), []);
  });
});
