// The Secrets page in Chromium (issue 20, points 3, 7 and 8): one credential value box that
// follows the chosen type, documents checked against the kind, what was pasted kept on an
// error, an "expired" badge; long input that does not break the layout; editing (rotating) a
// secret; user and org secrets told apart. Every state passes axe and the 400 px check.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as harness from "./harness.js";

let server, base, adminKey, tmp, context, page;
const outside = [];
const consoleErrors = [];

const checkPage = (name) => harness.checkPage(page, name);

const claudeDoc = (expiresAt) =>
  JSON.stringify({
    claudeAiOauth: { accessToken: "sk-ant-oat01-secrets-test", refreshToken: "sk-ant-ort01-secrets-test", expiresAt },
  });
const CLAUDE_DOC = claudeDoc(Date.now() + 365 * 24 * 3600 * 1000);

/** A call to the REST API as the admin: [status, parsed JSON or text]. */
const api = (method, path, body) => harness.api(base, adminKey, method, path, body);

/** The row of the credentials table whose name cell is `name`: its cell texts. */
async function credentialRow(name) {
  const rows = await page
    .locator("section", { has: page.locator("#credentials-title") })
    .locator("tbody tr")
    .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.innerText.trim())));
  return rows.find((r) => r[1] === name);
}

describe("the Secrets page in Chromium", () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "amika-ui-secrets-"));
    const s = await harness.startServer(join(tmp, "data"));
    server = s.child;
    base = s.url;
    adminKey = readFileSync(join(tmp, "data", "admin-api-key"), "utf8").trim();
    context = await harness.launchBrowser(tmp);
    page = await harness.watchedPage(context, base, outside, consoleErrors);
    await harness.signIn(page, base, adminKey);
  });

  after(async () => {
    await context?.close();
    await harness.stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("shows one value box that follows the type, checks the document against the kind and keeps what was pasted", async () => {
    await page.goto(`${base}/secrets`);
    const json = page.getByLabel("OAuth credential JSON");
    const key = page.getByLabel("API key or token");
    await page.getByLabel("Kind", { exact: true }).selectOption("claude");
    await page.getByLabel("Type").selectOption("oauth");
    assert.ok(await json.isVisible(), "the JSON box for oauth");
    assert.equal(await key.isVisible(), false, "no key box for oauth");
    await page.getByLabel("Type").selectOption("api_key");
    assert.ok(await key.isVisible(), "the key box for api_key");
    assert.equal(await json.isVisible(), false, "no JSON box for api_key");
    assert.ok(await json.isDisabled(), "the hidden box is not sent");
    await checkPage("credential-form-api-key");

    // JSON pasted as an API key: refused in plain words, everything kept, no page change.
    await page.getByLabel("Credential name").fill("pasted-doc");
    await key.fill(CLAUDE_DOC);
    const url = page.url();
    await page.getByRole("button", { name: "Add credential" }).click();
    await page.locator("#cred-value-error").waitFor();
    assert.equal(page.url(), url);
    assert.match(await page.locator("#cred-value-error").innerText(), /is a JSON document, not a key: choose type oauth/);
    assert.equal(await page.getByLabel("API key or token").inputValue(), CLAUDE_DOC, "the pasted value is kept");
    assert.equal(await page.getByLabel("Credential name").inputValue(), "pasted-doc");
    assert.equal(await page.getByLabel("Type").inputValue(), "api_key");
    assert.ok(!(await page.content()).includes("sk-ant-oat01-secrets-test"), "the value is not in the page's markup");
    await checkPage("credential-form-json-as-key");

    // A Claude document under codex: refused, naming what it is.
    await page.getByLabel("Kind", { exact: true }).selectOption("codex");
    await page.getByLabel("Type").selectOption("oauth");
    await page.getByLabel("OAuth credential JSON").fill(CLAUDE_DOC);
    await page.getByRole("button", { name: "Add credential" }).click();
    await page.locator("#cred-value-error").filter({ hasText: "Claude Code" }).waitFor();
    assert.match(
      await page.locator("#cred-value-error").innerText(),
      /codex oauth value: this is a Claude Code credential document \(it has claudeAiOauth\), not a Codex one: choose kind claude/,
    );
    assert.equal(await page.getByLabel("OAuth credential JSON").inputValue(), CLAUDE_DOC, "the pasted document is kept");
    assert.equal(await page.getByLabel("Kind", { exact: true }).inputValue(), "codex");
    await checkPage("credential-form-wrong-kind");

    // The kind fixed, the same pasted document goes in.
    await page.getByLabel("Kind", { exact: true }).selectOption("claude");
    await harness.submit(page, () => page.getByRole("button", { name: "Add credential" }).click());
    assert.match(await page.getByRole("status").innerText(), /claude credential pasted-doc added \(oauth, user scope\)/);
    const row = await credentialRow("pasted-doc");
    assert.equal(row[2], "oauth");
    assert.doesNotMatch(row[5], /expired/);
  });

  it("marks an expired credential in the list", async () => {
    const [status, body] = await api("POST", "/secrets/claude", {
      name: "old-login",
      type: "oauth",
      value: claudeDoc(Date.now() - 3 * 24 * 3600 * 1000),
    });
    assert.equal(status, 201, JSON.stringify(body));
    await page.goto(`${base}/secrets`);
    const row = await credentialRow("old-login");
    assert.match(row[5], /^expired \d{4}-\d\d-\d\d/);
    const badge = page.locator("tr", { hasText: "old-login" }).locator(".badge.expired");
    assert.equal(await badge.innerText(), "expired");
    await checkPage("credentials-expired");
  });

  it("keeps long input inside the page at 1280 and 400 px, limits inputs as the server does", async () => {
    const longName = "L".repeat(128);
    const longWord = "x".repeat(2500);
    const [status, body] = await api("POST", "/secrets", {
      name: longName,
      value: "v",
      description: `${longWord} and then some ordinary words that should wrap normally`,
    });
    assert.equal(status, 201, JSON.stringify(body));
    await page.goto(`${base}/secrets`);
    const width = () => page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    const [scroll, client] = await width();
    assert.ok(scroll <= client, `no horizontal scroll at 1280 px (${scroll} > ${client})`);
    await harness.assertFitsNarrow(page, "secrets-long-input");
    // At 400 px an ordinary word is not cut in two: "ordinary" stays on one line.
    await page.setViewportSize({ width: 400, height: 900 });
    const broken = await page.evaluate(() => {
      const cell = [...document.querySelectorAll("td")].find((td) => td.textContent.includes("ordinary words"));
      const text = [...cell.childNodes].find((n) => n.nodeType === 3 && n.textContent.includes("ordinary"));
      const range = document.createRange();
      const at = text.textContent.indexOf("ordinary");
      range.setStart(text, at);
      range.setEnd(text, at + "ordinary".length);
      return range.getClientRects().length;
    });
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.equal(broken, 1, "a word is on one line");
    await checkPage("secrets-long-input");

    // The name field takes what the server takes, and no more.
    assert.equal(await page.getByLabel("Name", { exact: true }).getAttribute("maxlength"), "128");
    await page.getByLabel("Name", { exact: true }).fill("");
    await page.getByLabel("Name", { exact: true }).pressSequentially("N".repeat(140), { delay: 0 });
    assert.equal((await page.getByLabel("Name", { exact: true }).inputValue()).length, 128);
    assert.equal(await page.getByLabel("Credential name").getAttribute("maxlength"), "128");
    assert.equal(await page.getByLabel("Value", { exact: true }).getAttribute("maxlength"), "65536");
    await page.goto(`${base}/sandboxes/new`);
    assert.equal(await page.getByLabel("Sandbox name").getAttribute("maxlength"), "63");
    assert.equal(await page.getByLabel("Env var").first().getAttribute("maxlength"), "128");
  });

  it("draws a focus ring of at least 3:1 against the header and the page", async () => {
    await page.goto(`${base}/secrets`);
    const ring = async () =>
      page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        let bg = "rgba(0, 0, 0, 0)";
        for (let n = el.parentElement; n; n = n.parentElement) {
          const c = getComputedStyle(n).backgroundColor;
          if (c !== "rgba(0, 0, 0, 0)" && c !== "transparent") {
            bg = c;
            break;
          }
        }
        return { text: el.textContent.trim(), color: style.outlineColor, width: parseFloat(style.outlineWidth), style: style.outlineStyle, bg };
      });
    // Tab through the header to its "Secrets" link, then on into the page.
    let seen = null;
    for (let i = 0; i < 8 && seen?.text !== "Secrets"; i++) {
      await page.keyboard.press("Tab");
      seen = await ring();
    }
    assert.equal(seen.text, "Secrets", "reached the header link by keyboard");
    assert.equal(seen.style, "solid");
    assert.ok(seen.width >= 2, `ring width ${seen.width}`);
    const onHeader = harness.contrast(seen.color, seen.bg);
    assert.ok(onHeader >= 3, `focus ring on the header: ${onHeader.toFixed(2)}:1 (${seen.color} on ${seen.bg})`);
    await page.getByRole("link", { name: "Add a secret" }).focus();
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Tab");
    const inPage = await ring();
    assert.equal(inPage.text, "Add a secret");
    const onPage = harness.contrast(inPage.color, inPage.bg);
    assert.ok(onPage >= 3, `focus ring in the page: ${onPage.toFixed(2)}:1 (${inPage.color} on ${inPage.bg})`);
  });

  it("edits and rotates a secret from the page; user and org secrets of one name are told apart", async () => {
    for (const scope of ["user", "org"]) {
      const [status, body] = await api("POST", "/secrets", { name: "SHARED_TOKEN", value: `v1-${scope}`, scope, description: `${scope} one` });
      assert.equal(status, 201, JSON.stringify(body));
    }
    await page.goto(`${base}/secrets`);
    const rows = page.locator("section", { has: page.locator("#secrets-title") }).locator("tbody tr", { hasText: "SHARED_TOKEN" });
    assert.equal(await rows.count(), 2);
    const scopes = await rows.locator('td[data-label="Scope"]').allInnerTexts();
    assert.deepEqual(scopes.sort(), ["org · shared with your org", "user · only you"]);
    // Each row's buttons say which one they act on.
    assert.ok(await page.getByRole("link", { name: "Edit org secret SHARED_TOKEN" }).isVisible());
    assert.ok(await page.getByRole("link", { name: "Delete user secret SHARED_TOKEN" }).isVisible());
    await checkPage("secrets-user-and-org");

    await harness.submit(page, () => page.getByRole("link", { name: "Edit org secret SHARED_TOKEN" }).click());
    assert.match(await page.locator("h1").innerText(), /Edit secret SHARED_TOKEN/);
    assert.match(await page.locator(".facts").innerText(), /org · shared with your org/);
    assert.equal(await page.locator("#secret-version").innerText(), "1");
    assert.equal(await page.getByLabel("Description").inputValue(), "org one");
    assert.equal(await page.getByLabel("New value (optional)").inputValue(), "", "no value on the page");
    await checkPage("secret-edit");

    await page.getByLabel("New value (optional)").fill("v2-org-rotated");
    await page.getByLabel("Description").fill("org one, rotated");
    await harness.submit(page, () => page.getByRole("button", { name: "Save" }).click());
    assert.equal(new URL(page.url()).pathname, "/secrets");
    assert.match(await page.getByRole("status").innerText(), /Secret SHARED_TOKEN updated: its value is now version 2\./);
    const [, list] = await api("GET", "/secrets");
    const org = list.find((s) => s.name === "SHARED_TOKEN" && s.scope === "org");
    const user = list.find((s) => s.name === "SHARED_TOKEN" && s.scope === "user");
    assert.equal(org.version, 2);
    assert.equal(org.description, "org one, rotated");
    assert.equal(user.version, 1, "the user secret of the same name is untouched");
    const [, revealed] = await api("POST", `/secrets/${org.id}/reveal`);
    assert.equal(revealed.value, "v2-org-rotated");
  });

  it("made no request to any other host, and no script errors", () => {
    assert.deepEqual(outside, []);
    assert.deepEqual(consoleErrors, []);
  });
});
