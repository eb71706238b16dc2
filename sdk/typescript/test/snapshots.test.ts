/**
 * Snapshots through the SDK against a real `amika server` and real bwrap sandboxes, with the
 * method names of the public Amika SDK: `getSandboxScrubPreview`, `createSandboxSnapshot`
 * (202 `capturing`, then `active`), `listSandboxSnapshots`, `createSandbox({ snapshot })` and
 * `deleteSandboxSnapshot`; a refused scrub names the file, never the value. No HTTP mocks.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { AmikaApiError, AmikaClient } from "../src/index.js";
import type { SandboxSnapshot } from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

const VALUE = "sk-live-SDK-SNAPSHOT-0123456789abcdef";

let server: TestServer;
let amika: AmikaClient;

before(async () => {
  server = await startServer();
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
  await amika.createSecret({ name: "API_TOKEN", value: VALUE });
});

after(async () => {
  for (const name of ["snap-src", "snap-fork", "snap-leaky"]) {
    await amika.deleteSandbox(name).catch(() => {});
  }
  await server?.stop();
});

async function settled(ref: string): Promise<SandboxSnapshot> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const snap = await amika.getSandboxSnapshot(ref);
    if (snap.state !== "capturing") return snap;
    assert.ok(Date.now() < deadline, "the capture did not end");
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("capture and fork: preview, scrub, list, start from the snapshot, delete", async () => {
  await amika.createSandbox({ name: "snap-src", network: "none", secretEnvVars: { API_TOKEN: "API_TOKEN" } });
  await amika.waitUntilReady("snap-src", { timeoutMs: 60_000 });
  const made = await amika.exec("snap-src", ["sh", "-c", "echo prepared > ~/workspace/state.txt"]);
  assert.equal(made.exitCode, 0, made.stderr);

  assert.deepEqual(await amika.getSandboxScrubPreview("snap-src"), { files: [], envVars: ["API_TOKEN"] });
  const created = await amika.createSandboxSnapshot({ sandboxRef: "snap-src", name: "sdk-base", description: "d", scope: "org" });
  assert.equal(created.state, "capturing");
  assert.equal(created.scope, "org");
  assert.equal(created.snapshot, "sdk-base");
  const snap = await settled("sdk-base");
  assert.equal(snap.state, "active", snap.errorMessage ?? "");
  assert.equal(snap.mode, "scrub_and_delete");
  assert.equal(snap.sourceSandboxName, "snap-src");
  assert.ok((snap.sizeBytes ?? 0) > 0);

  const { items } = await amika.listSandboxSnapshots();
  assert.deepEqual(items.map((s) => s.snapshot), ["sdk-base"]);
  assert.equal((await amika.listSandboxSnapshots({ sourceSandboxId: "nope" })).items.length, 0);

  await amika.createSandbox({ name: "snap-fork", network: "none", snapshot: "sdk-base" });
  const fork = await amika.waitUntilReady("snap-fork", { timeoutMs: 60_000 });
  assert.equal(fork.snapshot, "sdk-base");
  const read = await amika.exec("snap-fork", ["cat", "/home/amika/workspace/state.txt"]);
  assert.equal(read.stdout, "prepared\n");

  await amika.deleteSandboxSnapshot("sdk-base");
  await assert.rejects(amika.getSandboxSnapshot("sdk-base"), (e: unknown) => {
    assert.ok(e instanceof AmikaApiError);
    assert.equal(e.status, 404);
    return true;
  });
});

test("a value written into a file stops the capture, named by file and secret", async () => {
  await amika.createSandbox({ name: "snap-leaky", network: "none", secretEnvVars: { API_TOKEN: "API_TOKEN" } });
  await amika.waitUntilReady("snap-leaky", { timeoutMs: 60_000 });
  await amika.exec("snap-leaky", ["sh", "-c", 'echo "$API_TOKEN" > ~/workspace/notes.txt']);
  await amika.createSandboxSnapshot({ sandboxRef: "snap-leaky", name: "sdk-leaky" });
  const snap = await settled("sdk-leaky");
  assert.equal(snap.state, "failed");
  assert.match(snap.errorMessage ?? "", /~\/workspace\/notes\.txt \(API_TOKEN\)/);
  assert.ok(!(snap.errorMessage ?? "").includes(VALUE));
  await assert.rejects(amika.createSandboxSnapshot({ sandboxRef: "snap-leaky", name: "x", mode: "bogus" as never }), (e: unknown) => {
    assert.ok(e instanceof AmikaApiError);
    assert.equal(e.status, 400);
    return true;
  });
});
