/**
 * camelCase in TypeScript, snake_case on the wire: key conversion both ways.
 *
 * Only the keys of the API's own objects are converted. Values under the keys listed in
 * `OPAQUE_*` are user data and pass through untouched: `secretEnvVars` and `envVars` map env var
 * names (`DATABASE_URL` must stay `DATABASE_URL`), a preset's `packages` map npm package names
 * (`some_pkg` must stay `some_pkg`), and an audit event's `detail`, a sandbox's
 * `services` and an agent session's `metadata` (both ways: it is the caller's own object) are
 * free-form documents.
 */

const OPAQUE_TO_WIRE = new Set(["secretEnvVars", "envVars", "metadata"]);
const OPAQUE_FROM_WIRE = new Set([
  "secret_env_vars",
  "env_vars",
  "detail",
  "details",
  "services",
  "metadata",
  "packages",
]);

export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function snakeToCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function convert(
  value: unknown,
  rename: (key: string) => string,
  opaque: ReadonlySet<string>,
): unknown {
  if (Array.isArray(value)) {
    return value.map((v) => convert(v, rename, opaque));
  }
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // `undefined` means "not given": leave the field out rather than send null.
      if (v === undefined) continue;
      out[rename(k)] = opaque.has(k) ? v : convert(v, rename, opaque);
    }
    return out;
  }
  return value;
}

/** A request body in wire form: snake_case keys, user-data maps unchanged. */
export function toWire(value: unknown): unknown {
  return convert(value, camelToSnake, OPAQUE_TO_WIRE);
}

/** An answer in SDK form: camelCase keys, user-data maps unchanged. */
export function fromWire<T>(value: unknown): T {
  return convert(value, snakeToCamel, OPAQUE_FROM_WIRE) as T;
}

/** `api-key` is accepted as a spelling of `api_key`; send the canonical one. */
export function normalizeCredentialType<T extends string | undefined>(t: T): T {
  return (t === "api-key" ? "api_key" : t) as T;
}
