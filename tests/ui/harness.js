// What the UI test files share: a real `amika server` on port 0 with its own data dir, Debian's
// Chromium (headless) through playwright-core, and the checks every page passes (every control
// labelled, no horizontal scroll at 400 px, screenshots at 1280 and 400 px in artifacts/ui/).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
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

/** A call to the REST API of `base` with `key`: [status, parsed JSON or text]. */
export async function api(base, key, method, path, body) {
  const r = await fetch(`${base}/api/v0beta1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  try {
    return [r.status, JSON.parse(text)];
  } catch {
    return [r.status, text];
  }
}

/** POST each `[path, body]` to the REST API, each answered 201 (a test's fixtures). */
export async function createAll(base, key, entries) {
  for (const [path, body] of entries) {
    const [status, answer] = await api(base, key, "POST", path, body);
    assert.equal(status, 201, `${path}: ${JSON.stringify(answer)}`);
  }
}

/** Run `command` in sandbox `name` through the API's exec (30 s at most): its NDJSON frames as
 * text. */
export async function execText(base, key, name, command) {
  const r = await fetch(`${base}/api/v0beta1/sandboxes/${name}/exec`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ command, timeout_secs: 30 }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return text;
}

/** Wait until `check()` holds, polling every `everyMs`; fails naming `what` after `limitMs`. */
export async function waitFor(what, check, limitMs = 30_000, everyMs = 200) {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The context's page, with every request that leaves `base`'s origin pushed to `outside` and
 * every console error (but failed 4xx loads, which tests cause on purpose) to `consoleErrors`. */
export async function watchedPage(context, base, outside, consoleErrors) {
  const origin = new URL(base).origin;
  context.on("request", (req) => {
    const url = new URL(req.url());
    if (url.origin !== origin && url.protocol !== "data:") outside.push(req.url());
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) {
      consoleErrors.push(msg.text());
    }
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  return page;
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
  await assertAxeClean(page, name);
  await assertFitsNarrow(page, name);
  await snap(page, name);
}

/** Run `action` (a click or key press that submits a form) and wait for the new page. */
export async function submit(page, action) {
  await Promise.all([page.waitForEvent("framenavigated"), action()]);
  await page.waitForLoadState("load");
}

const axeSource = readFileSync(join(here, "node_modules/axe-core/axe.min.js"), "utf8");

/** axe-core (WCAG 2.0–2.2 A and AA rules) finds no violation on the page as it is now. The
 * source is evaluated through the debugging protocol, which the pages' CSP does not cover. */
export async function assertAxeClean(page, name) {
  const loaded = await page.evaluate(() => typeof window.axe === "object");
  if (!loaded) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
    });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
  assert.deepEqual(violations, [], `${name}: axe violations`);
}

/** Sign in through the sign-in page with `key`; lands on the sandbox list. */
export async function signIn(page, base, key) {
  await page.goto(`${base}/login`);
  await page.getByLabel("API key").fill(key);
  await Promise.all([page.waitForURL(`${base}/sandboxes`), page.keyboard.press("Enter")]);
}

/** The WCAG contrast ratio of two `rgb(...)`/`rgba(...)` colours, the first drawn over the
 * second (its alpha blended in). */
export function contrast(fg, bg) {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    assert.ok(m, `not a colour: ${c}`);
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const back = parse(bg);
  const front = parse(fg);
  const mix = (f, b) => f * front.a + b * (1 - front.a);
  const lum = ({ r, g, b }) => {
    const lin = (v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const over = { r: mix(front.r, back.r), g: mix(front.g, back.g), b: mix(front.b, back.b) };
  const [l1, l2] = [lum(over), lum(back)].sort((x, y) => y - x);
  return (l1 + 0.05) / (l2 + 0.05);
}
