/**
 * getSSH / revokeSSH (the public Amika SDK's calls) against a real server with its SSH
 * endpoint on, driven with the real OpenSSH client.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { AmikaApiError, AmikaClient } from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

let server: TestServer;
let amika: AmikaClient;
let home: string;

before(async () => {
  server = await startServer({ config: { ssh_listen: "127.0.0.1:0" } });
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
  home = await mkdtemp(join(tmpdir(), "amika-sdk-ssh-"));
  await amika.createSandbox({ name: "ssh-box", network: "none" });
  await amika.waitUntilReady("ssh-box", { timeoutMs: 30_000 });
});

after(async () => {
  await amika?.deleteSandbox("ssh-box").catch(() => {});
  await server?.stop();
});

/** `ssh <destination> -- <command>`: its exit status and output. */
function ssh(destination: string, command: string): { status: number | null; out: string } {
  const r = spawnSync(
    "ssh",
    [
      "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
      "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
      ...destination.split(/\s+/), "--", command,
    ],
    { env: { ...process.env, HOME: home, SSH_AUTH_SOCK: "" }, encoding: "utf8", timeout: 30_000 },
  );
  return { status: r.status, out: r.stdout };
}

test("getSSH answers a destination that logs in; revokeSSH ends it", async () => {
  const access = await amika.getSSH("ssh-box");
  assert.match(access.sshDestination, /^-p \d+ amkssh_[0-9a-f]{48}@127\.0\.0\.1$/);
  assert.ok(access.sshDestination.includes(access.token));
  assert.match(access.hostKeyFingerprint, /^SHA256:/);
  assert.equal(access.repoName, "");
  assert.ok(Date.parse(access.expiresAt) > Date.now() + 59 * 60_000);
  assert.deepEqual(ssh(access.sshDestination, "id -un"), { status: 0, out: "amika\n" });

  await amika.revokeSSH("ssh-box", access.token);
  assert.equal(ssh(access.sshDestination, "true").status, 255);
  await assert.rejects(amika.revokeSSH("ssh-box", access.token), (e: unknown) => {
    return e instanceof AmikaApiError && e.status === 404;
  });
});

test("getSSH refuses a lifetime over 24 hours, naming the field", async () => {
  await assert.rejects(amika.getSSH("ssh-box", { ttlSecs: 86_401 }), (e: unknown) => {
    return e instanceof AmikaApiError && e.status === 400 && e.message.includes("ttl_secs");
  });
  const short = await amika.getSSH("ssh-box", { ttlSecs: 60 });
  assert.ok(Date.parse(short.expiresAt) <= Date.now() + 61_000);
});

test("a registered public key logs in as the sandbox's name, until it is deleted", async () => {
  const key = join(home, "id_ed25519");
  const gen = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "sdk", "-f", key]);
  assert.equal(gen.status, 0, String(gen.stderr));
  const line = readFileSync(`${key}.pub`, "utf8");
  const registered = await amika.createSSHPublicKey({ name: "sdk-key", publicKey: line });
  assert.equal(registered.keyType, "ssh-ed25519");
  assert.match(registered.fingerprint, /^SHA256:/);
  assert.equal(registered.publicKey, line.trim().replace(/ sdk$/, ""));
  assert.deepEqual(
    (await amika.listSSHPublicKeys()).map((k) => k.name),
    ["sdk-key"],
  );
  const port = /^-p (\d+) /.exec((await amika.getSSH("ssh-box")).sshDestination)![1];
  const withKey = ["-i", key, "-o", "IdentitiesOnly=yes", `-p ${port} ssh-box@127.0.0.1`];
  assert.deepEqual(ssh(withKey.join(" "), "id -un"), { status: 0, out: "amika\n" });

  await assert.rejects(
    amika.createSSHPublicKey({ name: "again", publicKey: line }),
    (e: unknown) => e instanceof AmikaApiError && e.status === 409,
  );
  await assert.rejects(
    amika.createSSHPublicKey({ name: "bad", publicKey: "ssh-ed25519 nope" }),
    (e: unknown) =>
      e instanceof AmikaApiError && e.status === 400 && e.details[0]?.field === "public_key",
  );
  await amika.deleteSSHPublicKey("sdk-key");
  assert.equal(ssh(withKey.join(" "), "true").status, 255);
  assert.deepEqual(await amika.listSSHPublicKeys(), []);
});
