/**
 * @amika/sdk — the TypeScript SDK of amika: sandboxes for AI coding agents, with secrets and
 * agent credentials injected from an encrypted vault.
 *
 * ```ts
 * import { AmikaClient } from "@amika/sdk";
 * const amika = new AmikaClient({ baseUrl: "http://127.0.0.1:7070", accessToken: process.env.AMIKA_API_KEY! });
 * const sb = await amika.getSandbox("dev-box");
 * ```
 */
export { AmikaClient, PAGE_SIZE, SDK_VERSION } from "./client.js";
export type { AmikaClientOptions, Bytes } from "./client.js";
export {
  AmikaAgentJobTimeoutError,
  AmikaApiError,
  AmikaError,
  AmikaExecError,
  AmikaNetworkError,
  AmikaSandboxFailedError,
  AmikaTimeoutError,
} from "./errors.js";
export type * from "./types.js";
export type {
  AgentDeltaKind,
  AgentStreamDelta,
  AgentStreamDone,
  AgentStreamEvent,
  AgentStreamOptions,
  AgentStreamStatus,
} from "./stream.js";
/** The snake_case wire types generated from the server's OpenAPI document. */
export type { components as WireComponents, paths as WirePaths } from "./generated/openapi.js";
