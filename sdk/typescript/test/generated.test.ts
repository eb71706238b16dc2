/**
 * The generated wire types are exactly what `openapi-typescript` makes of the checked-in
 * `docs/openapi.json` (which the Rust test `crates/server/tests/openapi.rs` keeps equal to the
 * server's document). With the compile-time checks in `src/types.ts`, a server change that is not
 * followed by the SDK fails here or in `tsc`.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";

import { repoRoot, sdkDir } from "./server.js";

test("src/generated/openapi.ts is regenerated unchanged from docs/openapi.json", async () => {
  const require = createRequire(join(sdkDir, "package.json"));
  const cli = join(dirname(require.resolve("openapi-typescript/package.json")), "bin", "cli.js");
  const dir = await mkdtemp(join(tmpdir(), "amika-sdk-gen-"));
  try {
    const out = join(dir, "openapi.ts");
    execFileSync(process.execPath, [cli, join(repoRoot, "docs", "openapi.json"), "-o", out], {
      cwd: sdkDir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    const fresh = await readFile(out, "utf8");
    const committed = await readFile(join(sdkDir, "src", "generated", "openapi.ts"), "utf8");
    assert.ok(
      fresh === committed,
      "src/generated/openapi.ts is out of date with docs/openapi.json: run `npm run generate` in sdk/typescript, then fix what `tsc` reports",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
