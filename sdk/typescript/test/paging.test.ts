/**
 * Paged lists through the SDK against a real `amika server`: `listSecrets` pages through (500 a
 * page) and answers every secret once, in order; `secretPages(limit)` yields the pages as they
 * arrive. No HTTP mocks.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { AmikaClient } from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

let server: TestServer;
let amika: AmikaClient;
const names = Array.from({ length: 1234 }, (_, i) => `page-${String(i).padStart(4, "0")}`);

before(async () => {
  server = await startServer();
  amika = new AmikaClient({ baseUrl: server.url, accessToken: server.adminKey });
  // One batch request for all of them.
  const r = await fetch(`${server.url}/api/v0beta1/secret-batches`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ secrets: names.map((name) => ({ name, value: "v" })) }),
  });
  assert.equal(r.status, 200, await r.clone().text());
});

after(async () => {
  await server?.stop();
});

test("listSecrets pages through every secret once, in order", async () => {
  const all = await amika.listSecrets();
  assert.deepEqual(
    all.map((s) => s.name),
    names,
  );
});

test("secretPages yields pages of the limit asked, then the rest", async () => {
  const sizes: number[] = [];
  const seen: string[] = [];
  for await (const page of amika.secretPages(400)) {
    sizes.push(page.length);
    seen.push(...page.map((s) => s.name));
  }
  assert.deepEqual(sizes, [400, 400, 400, 34]);
  assert.deepEqual(seen, names);
});
