/**
 * Presets through the SDK against a real `amika server`: `listPresets`, `installPreset` (the
 * real `npm install` of the pinned Claude Code and Codex packages, its progress read as it
 * arrives), `removePreset`, and their refusals. No HTTP mocks.
 *
 * The install goes into the server's own (empty) presets dir, so that "not installed", an
 * install and a removal can all be seen; npm's cache is the one every test shares
 * (`$AMIKA_NPM_CACHE`, else `~/.cache/amika-npm`, the server's default), so only the first run
 * on a machine downloads the packages.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { AmikaApiError, AmikaClient, AmikaError } from "../src/index.js";
import type { PresetInstallEvent, PresetList } from "../src/index.js";
import { fromWire } from "../src/wire.js";
import { repoRoot, startServer, type TestServer } from "./server.js";

let server: TestServer;
let admin: AmikaClient;
let member: AmikaClient;
let pinned: { name: string; packages: Record<string, string>; bin: string[] };

before(async () => {
  server = await startServer();
  admin = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
  const r = await fetch(`${server.url}/api/v0beta1/admin/users`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "dev", org: "default", is_admin: false }),
  });
  assert.equal(r.status, 201, await r.clone().text());
  const created = (await r.json()) as { api_key: string };
  member = new AmikaClient({ baseUrl: server.url, accessToken: created.api_key });
  pinned = JSON.parse(await readFile(join(repoRoot, "presets", "coder.json"), "utf8"));
});

after(async () => {
  await admin?.deleteSandbox("preset-box").catch(() => {});
  await server?.stop();
});

test("every user lists the coder preset with its pinned packages, not installed yet", async () => {
  for (const client of [admin, member]) {
    const { presets } = await client.listPresets();
    assert.equal(presets.length, 1);
    const coder = presets[0]!;
    assert.equal(coder.name, "coder");
    assert.deepEqual(coder.packages, pinned.packages, "npm package names stay as npm spells them");
    assert.deepEqual(coder.bin, ["claude", "codex"]);
    assert.match(coder.current, /^[0-9a-f]{12}$/);
    assert.equal(coder.installed, false);
    assert.equal(coder.default, false);
    assert.deepEqual(coder.versions, []);
  }
});

test("installs, removes and unknown presets are refused with the server's status and message", async () => {
  const forbidden = (e: unknown) =>
    e instanceof AmikaApiError && e.status === 403 && e.code === "forbidden" &&
    e.message === "only admins may install or remove presets";
  await assert.rejects(member.installPreset("coder"), forbidden);
  await assert.rejects(member.removePreset("coder"), forbidden);

  const unknown = (e: unknown) =>
    e instanceof AmikaApiError && e.status === 404 && e.code === "not_found" &&
    e.message === 'preset "gamer" (this server has coder) not found' &&
    e.request === "POST /api/v0beta1/presets/gamer/install";
  await assert.rejects(admin.installPreset("gamer"), unknown);
  await assert.rejects(
    admin.removePreset("gamer"),
    (e: unknown) => e instanceof AmikaApiError && e.status === 404 && /preset "gamer"/.test(e.message),
  );
  await assert.rejects(
    admin.removePreset("coder", { version: "0123456789ab" }),
    (e: unknown) =>
      e instanceof AmikaApiError && e.status === 404 &&
      e.message === 'version "0123456789ab" of preset coder not found',
  );
  // A name that is no path segment is refused before any request.
  await assert.rejects(
    admin.installPreset(".."),
    (e: unknown) => e instanceof AmikaError && !(e instanceof AmikaApiError) && /invalid name/.test(e.message),
  );
  assert.equal((await admin.listPresets()).presets[0]!.installed, false, "nothing was installed");
});

test("installPreset streams npm's progress while it runs, then resolves with the installed preset", async () => {
  const events: PresetInstallEvent[] = [];
  // Taken when the first progress line arrives: the install is still running then.
  let duringInstall: Promise<PresetList> | undefined;
  const preset = await admin.installPreset("coder", {
    onProgress: (e) => {
      events.push(e);
      duringInstall ??= admin.listPresets();
    },
  });
  assert.ok(duringInstall, "no progress line arrived");
  const snapshot = await duringInstall;
  assert.equal(snapshot.presets[0]!.installed, false, "the first line came before the layer was in place");

  assert.ok(events.length >= 4, JSON.stringify(events));
  assert.ok(events.every((e) => e.event === "progress" && e.steps === 4), JSON.stringify(events));
  const steps = events.map((e) => e.step);
  assert.deepEqual(steps, [...steps].sort((a, b) => a - b), "steps in order");
  assert.deepEqual([...new Set(steps)], [1, 2, 3, 4]);
  const specs = Object.entries(pinned.packages).map(([p, v]) => `${p}@${v}`).join(" ");
  assert.equal(events[0]!.message, `npm install ${specs}`);
  assert.ok(events.some((e) => e.step === 1 && /npm/.test(e.message) && e !== events[0]), "npm's own lines");

  assert.equal(preset.name, "coder");
  assert.equal(preset.installed, true);
  assert.equal(preset.versions.length, 1);
  const version = preset.versions[0]!;
  assert.equal(version.id, preset.current);
  assert.equal(version.current, true);
  assert.deepEqual(version.packages, pinned.packages);
  assert.equal(version.node, execFileSync("/usr/bin/node", ["--version"], { encoding: "utf8" }).trim());
  assert.ok(Date.now() - Date.parse(version.installedAt) < 15 * 60_000, version.installedAt);
  assert.deepEqual((await member.listPresets()).presets[0], preset, "the list says the same to anyone");

  // Installed already: one line, at once.
  const again: PresetInstallEvent[] = [];
  const same = await admin.installPreset("coder", { onProgress: (e) => again.push(e) });
  assert.deepEqual(same, preset);
  assert.deepEqual(again.map((e) => [e.step, e.message]), [[4, `coder ${preset.current} is already installed`]]);
});

test("a sandbox gets the installed version; removal keeps a version in use, then removes it", async () => {
  const { presets } = await admin.listPresets();
  const coder = presets[0]!;
  assert.equal(coder.installed, true, "runs after the install test");
  const sb = await admin.createSandbox({
    name: "preset-box",
    preset: "coder",
    network: "none",
    agentCredentials: [{ kind: "claude", none: true }, { kind: "codex", none: true }],
  });
  assert.equal(sb.preset, `coder@${coder.current}`);
  await admin.waitUntilReady("preset-box", { timeoutMs: 60_000 });
  const r = await admin.exec("preset-box", ["sh", "-c", "command -v claude; command -v codex; claude --version"]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /^\/opt\/amika\/preset\/bin\/claude\n\/opt\/amika\/preset\/bin\/codex\n/);
  assert.ok(r.stdout.includes(pinned.packages["@anthropic-ai/claude-code"]!), r.stdout);

  const kept = await admin.removePreset("coder");
  assert.deepEqual(kept, { removed: [], kept: [{ id: coder.current, sandboxes: ["preset-box"] }] });
  assert.equal((await admin.listPresets()).presets[0]!.installed, true);

  await admin.deleteSandbox("preset-box");
  const removed = await admin.removePreset("coder", { version: coder.current });
  assert.deepEqual(removed, { removed: [coder.current], kept: [] });
  const after = (await admin.listPresets()).presets[0]!;
  assert.equal(after.installed, false);
  assert.deepEqual(after.versions, []);
  const actions = (await admin.listAuditEvents({ limit: 50 }))
    .filter((e) => e.objectType === "preset")
    .map((e) => [e.action, e.objectName, e.objectId]);
  // Newest first: the removal, then the installs (the one that found it installed is audited too).
  assert.deepEqual(actions[0], ["preset.removed", "coder", coder.current]);
  assert.deepEqual(actions.slice(1), [
    ["preset.installed", "coder", coder.current],
    ["preset.installed", "coder", coder.current],
  ]);
});

test("an install that fails rejects with the server's message after its progress lines", async () => {
  // npm cannot create its cache under a file: a real failure of the real npm.
  const broken = await startServer({ config: { npm_cache_dir: "/dev/null/amika-npm" } });
  try {
    const client = new AmikaClient({ baseUrl: broken.url, accessToken: broken.adminKey });
    const events: PresetInstallEvent[] = [];
    let failure: unknown;
    await client.installPreset("coder", { onProgress: (e) => events.push(e) }).catch((e: unknown) => {
      failure = e;
    });
    assert.ok(failure instanceof AmikaApiError, String(failure));
    assert.equal(failure.status, 503);
    assert.equal(failure.code, "provider_unavailable");
    assert.equal(failure.request, "POST /api/v0beta1/presets/coder/install");
    assert.match(failure.message, /^npm install @anthropic-ai\/claude-code@\S+ @openai\/codex@\S+ failed/);
    assert.ok(events.length >= 1 && events.every((e) => e.step === 1), JSON.stringify(events));
    assert.equal((await client.listPresets()).presets[0]!.installed, false);
  } finally {
    await broken.stop();
  }
});

test("package names in answers are kept as npm spells them", () => {
  const wire = { presets: [{ packages: { some_pkg: "1.0.0", "@scope/a-b": "2.0.0" }, installed_at: "x" }] };
  assert.deepEqual(fromWire(wire), {
    presets: [{ packages: { some_pkg: "1.0.0", "@scope/a-b": "2.0.0" }, installedAt: "x" }],
  });
});
