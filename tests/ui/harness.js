// What the UI test files share: a real `amika server` on port 0 with its own data dir, Debian's
// Chromium (headless) through playwright-core, and the checks every page passes (every control
// labelled, no horizontal scroll at 400 px, screenshots at 1280 and 400 px in artifacts/ui/).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "../..");
export const bin = process.env.AMIKA_BIN || join(root, "target/debug/amika");
export const shots = join(root, "artifacts/ui");
export const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

/** Start `amika server` (with `extraArgs`, e.g. `--config FILE`) and wait for the line that
 * gives its URL. */
export function startServer(dataDir, extraArgs = []) {
  assert.ok(existsSync(bin), `${bin} is missing: run \`cargo build -p amika-cli\` first`);
  return new Promise((resolvePromise, reject) => {
    const args = ["server", "--listen", "127.0.0.1:0", "--data-dir", dataDir, ...extraArgs];
    const child = spawn(bin, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: "warn" },
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${out}\n${err}`)), 30_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/amika server listening on (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolvePromise({ child, url: m[1].replace(/\/$/, "") });
      }
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}\n${err}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stopServer(child) {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

/** Headless Chromium with a fresh profile under `dir`. */
export async function launchBrowser(dir) {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);
  mkdirSync(shots, { recursive: true });
  return chromium.launchPersistentContext(join(dir, "chromium-profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
}

/** Screenshots of the current page at both widths; back to 1280 px afterwards. */
export async function snap(page, name) {
  for (const width of [1280, 400]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(shots, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

/** At 400 px the page has no horizontal scroll. */
export async function assertFitsNarrow(page, name) {
  await page.setViewportSize({ width: 400, height: 900 });
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.ok(scroll <= client, `${name}: horizontal scroll at 400 px (${scroll} > ${client})`);
}

/** Every visible form control has a label (or an aria-label). */
export async function assertLabelled(page, name) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, progress")]
      .filter((el) => el.type !== "hidden" && !el.closest("template"))
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, [], `${name}: controls without a label`);
}

export async function checkPage(page, name) {
  await assertLabelled(page, name);
  await assertFitsNarrow(page, name);
  await snap(page, name);
}

/** Run `action` (a click or key press that submits a form) and wait for the new page. */
export async function submit(page, action) {
  await Promise.all([page.waitForEvent("framenavigated"), action()]);
  await page.waitForLoadState("load");
}
