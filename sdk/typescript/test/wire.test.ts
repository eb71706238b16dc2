/** Key conversion between the SDK's camelCase and the wire's snake_case. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { camelToSnake, fromWire, snakeToCamel, toWire } from "../src/wire.js";

test("keys convert both ways", () => {
  for (const [camel, snake] of [
    ["secretEnvVars", "secret_env_vars"],
    ["isDefault", "is_default"],
    ["memoryMib", "memory_mib"],
    ["timeoutSecs", "timeout_secs"],
    ["name", "name"],
  ]) {
    assert.equal(camelToSnake(camel!), snake);
    assert.equal(snakeToCamel(snake!), camel);
  }
});

test("user-data maps keep their keys; undefined fields are left out", () => {
  const wire = toWire({
    name: "dev-box",
    secretEnvVars: { DATABASE_URL: "DATABASE_URL", myLowerVar: "x", A_B: "y" },
    envVars: { NODE_ENV: "development", myLowerVar: "v", A_B: "w" },
    agentCredentials: [{ kind: "codex", none: true, name: undefined }],
    memoryMib: 64,
  });
  assert.deepEqual(wire, {
    name: "dev-box",
    secret_env_vars: { DATABASE_URL: "DATABASE_URL", myLowerVar: "x", A_B: "y" },
    env_vars: { NODE_ENV: "development", myLowerVar: "v", A_B: "w" },
    agent_credentials: [{ kind: "codex", none: true }],
    memory_mib: 64,
  });
  const sdk = fromWire({
    object_name: "s",
    detail: { secret_id: "sec_1", nested: { value_hmac: "ab" } },
    services: [{ some_key: 1 }],
    resolved_agent_credentials: [{ kind: "claude", type: "oauth" }],
    error_message: null,
    metadata: { credential: "personal-oauth", some_key: 2 },
    env_vars: { NODE_ENV: "development", my_var: "v" },
    repo_config: { env_vars: ["NODE_ENV"], setup_script: null },
  });
  assert.deepEqual(sdk, {
    objectName: "s",
    detail: { secret_id: "sec_1", nested: { value_hmac: "ab" } },
    services: [{ some_key: 1 }],
    resolvedAgentCredentials: [{ kind: "claude", type: "oauth" }],
    errorMessage: null,
    metadata: { credential: "personal-oauth", some_key: 2 },
    envVars: { NODE_ENV: "development", my_var: "v" },
    repoConfig: { envVars: ["NODE_ENV"], setupScript: null },
  });
});
