/**
 * Test harness: a real `amika server` process on a free port of 127.0.0.1, with SQLite and real
 * bubblewrap sandboxes in a fresh temp dir. Nothing is mocked: the SDK talks HTTP to it.
 *
 * The binary is `target/debug/amika` of this repository (`scripts/test.sh` builds it in its cargo
 * step; when it is missing it is built here with `cargo build -p amika-cli`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** `sdk/typescript`, whether run from `test/` or from the compiled `.test-build/test/`. */
export const sdkDir = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
})();
export const repoRoot = resolve(sdkDir, "../..");

function amikaBinary(): string {
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(repoRoot, "target");
  const bin = join(targetDir, "debug", "amika");
  if (!existsSync(bin)) {
    const r = spawnSync("cargo", ["build", "-p", "amika-cli"], { cwd: repoRoot, stdio: "inherit" });
    if (r.status !== 0) throw new Error(`cargo build -p amika-cli failed (${r.status})`);
  }
  return bin;
}

export interface TestServer {
  url: string;
  adminKey: string;
  dataDir: string;
  /** What the server wrote to stderr so far (its log). */
  log(): string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** A server config file's content (`amika server --config`, see docs/configuration.md). */
  config?: Record<string, unknown>;
}

export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), "amika-sdk-test-"));
  const dataDir = join(dir, "data");
  const args = ["server", "--listen", "127.0.0.1:0", "--data-dir", dataDir];
  if (options.config) {
    const file = join(dir, "config.json");
    await writeFile(file, JSON.stringify(options.config));
    args.push("--config", file);
  }
  const env: Record<string, string | undefined> = { ...process.env, RUST_LOG: "debug" };
  // The server must use its own temp state, whatever the caller's environment says.
  delete env.AMIKA_DATABASE_URL;
  delete env.AMIKA_MASTER_KEY;
  const child: ChildProcess = spawn(amikaBinary(), args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`amika server did not report its address within 30 s\n${stderr}`));
    }, 30_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const m = /^amika server listening on (\S+)/.exec(line.trim());
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`amika server exited (${code ?? signal}) before listening\n${stderr}`));
    });
  });
  const adminKey = (await readFile(join(dataDir, "admin-api-key"), "utf8")).trim();
  return {
    url,
    adminKey,
    dataDir,
    log: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
