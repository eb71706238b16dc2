/**
 * `AmikaClient`: the amika REST API (`/api/v0beta1`) over the runtime's built-in `fetch`.
 *
 * Route templates are typed against the generated `paths` of `docs/openapi.json`, so a route
 * renamed or removed on the server breaks the build here. Names and ids are URL-encoded into
 * their path segment; bodies go out snake_case and come back camelCase (see `wire.ts`).
 */
import type { paths } from "./generated/openapi.js";
import {
  AmikaAgentJobTimeoutError,
  AmikaApiError,
  AmikaError,
  AmikaExecError,
  AmikaNetworkError,
  AmikaSandboxFailedError,
  AmikaTimeoutError,
} from "./errors.js";
import type {
  AgentCredential,
  AgentKind,
  AgentSendCallOptions,
  AgentSendInput,
  AgentSendJob,
  AgentSendResponse,
  AgentSession,
  AgentSessionsList,
  ApiKeyList,
  ApiKeyWithValue,
  AuditEvent,
  CreateApiKeyInput,
  CreateProviderSecretInput,
  CreateSandboxInput,
  CreateSecretInput,
  CreateSessionInput,
  ErrorDetail,
  ExecFrame,
  ExecOptions,
  ExecResult,
  FinishedAgentSendJob,
  LatestSessionOptions,
  ListAuditEventsOptions,
  ListSessionsOptions,
  Me,
  GetSSHOptions,
  SshAccess,
  SshPublicKey,
  CreateSshPublicKeyInput,
  ResolutionPreview,
  Sandbox,
  Secret,
  SetupLogOptions,
  UpdateProviderSecretInput,
  UpdateSecretInput,
  UpdateSessionInput,
  UploadWorkspaceOptions,
  WaitForAgentSendJobOptions,
  WaitOptions,
  WorkspaceUpload,
} from "./types.js";
import { fromWire, normalizeCredentialType, toWire } from "./wire.js";
import { readAgentEvents, type AgentStreamEvent, type AgentStreamOptions } from "./stream.js";
import { followPresetInstall } from "./presets.js";
import type {
  CreateSandboxSnapshotInput,
  InstallPresetOptions,
  ListSandboxSnapshotsOptions,
  SandboxSnapshot,
  ScrubPreview,
  SnapshotList,
  Preset,
  PresetList,
  PresetRemoval,
  RemovePresetOptions,
} from "./types.js";

export const SDK_VERSION = "0.1.0";

export interface AmikaClientOptions {
  /** The server's root URL, e.g. `http://127.0.0.1:7070`. */
  baseUrl: string;
  /** An API key (`amk_...`), sent as `Authorization: Bearer ...`. */
  accessToken: string;
  /** Abandon an ordinary request after this long (default 30 000 ms; exec streams have none). */
  timeoutMs?: number;
  /** A `fetch` to use instead of the global one (e.g. one with a proxy agent). */
  fetch?: typeof fetch;
}

type Route = keyof paths;
type HttpMethod = "get" | "post" | "put" | "patch" | "delete";
/** The methods the document defines for a route. */
type MethodOf<R extends Route> = {
  [M in HttpMethod]: paths[R][M] extends undefined ? never : M;
}[HttpMethod];
/** The `{param}` names of a route template. */
type ParamsOf<R extends string> = R extends `${string}{${infer P}}${infer Rest}`
  ? P | ParamsOf<Rest>
  : never;

/** Bytes the SDK sends as they are (`application/octet-stream`). */
export type Bytes = Uint8Array | ArrayBuffer | Blob;

function isBytes(v: unknown): v is Bytes {
  return (
    v instanceof Uint8Array ||
    v instanceof ArrayBuffer ||
    (typeof Blob !== "undefined" && v instanceof Blob)
  );
}

interface CallOptions {
  /** A JSON body (converted to snake_case unless `raw`), or bytes sent as they are. */
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Send and return the body as is (the api-keys endpoints are camelCase on the wire). */
  raw?: boolean;
  /** The caller's abort signal, on top of the timeout. */
  signal?: AbortSignal;
  /** Instead of the client's `timeoutMs`; null: none. */
  timeoutMs?: number | null;
  /** Sees the answer's headers (a paged list's `X-Next-Cursor`). */
  onHeaders?: (headers: Headers) => void;
}

/** Items per page when a list method pages through. */
export const PAGE_SIZE = 500;

/** What a route parameter is called in an error about its value. */
const SEGMENT_NAMES: Record<string, string> = {
  kind: "agent kind",
  job_id: "job id",
  session_id: "session id",
};

/** A path segment from a name or id; `.`/`..` would be resolved away by URL parsing. */
function segment(what: string, value: string): string {
  if (typeof value !== "string" || value === "" || value === "." || value === "..") {
    throw new AmikaError(
      `invalid ${what} ${JSON.stringify(value)}: expected a non-empty id or name`,
    );
  }
  return encodeURIComponent(value);
}

/**
 * A credential route of `kind`: the document has one path per agent kind (`/secrets/claude`,
 * `/secrets/codex`), all of one shape, so the route is typed as Claude's.
 */
function kindRoute<S extends string>(kind: AgentKind, suffix: S): `/api/v0beta1/secrets/claude${S}` {
  return `/api/v0beta1/secrets/${segment("agent kind", kind)}${suffix}` as `/api/v0beta1/secrets/claude${S}`;
}

/** A signal that aborts when any of `signals` does (`AbortSignal.any` needs Node 20.3). */
function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const given = signals.filter((s): s is AbortSignal => s !== undefined);
  if (given.length <= 1) return given[0];
  const controller = new AbortController();
  for (const s of given) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}

function causeCode(e: unknown): unknown {
  return ((e as { cause?: unknown })?.cause as { code?: unknown } | undefined)?.code;
}

function describeCause(e: unknown): string {
  const cause = (e as { cause?: unknown })?.cause ?? e;
  const c = cause as { code?: unknown; message?: unknown };
  if (typeof c?.code === "string") return c.code + (typeof c.message === "string" ? `: ${c.message}` : "");
  if (typeof c?.message === "string") return c.message;
  return String(cause);
}

export class AmikaClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: AmikaClientOptions) {
    if (!options || typeof options.baseUrl !== "string" || options.baseUrl === "") {
      throw new AmikaError("AmikaClient: baseUrl is required, e.g. http://127.0.0.1:7070");
    }
    if (typeof options.accessToken !== "string" || options.accessToken === "") {
      throw new AmikaError("AmikaClient: accessToken is required (an amika API key, amk_...)");
    }
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new AmikaError(
        `AmikaClient: baseUrl ${JSON.stringify(options.baseUrl)} is not a URL: expected e.g. http://127.0.0.1:7070`,
      );
    }
    this.baseUrl = url.href.replace(/\/+$/, "");
    this.#token = options.accessToken;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") {
      throw new AmikaError("AmikaClient: no fetch available: use Node 18 or later");
    }
    this.#fetch = f;
  }

  // ---------------------------------------------------------------- transport

  #url<R extends Route>(
    route: R,
    params: Record<ParamsOf<R>, string>,
    query?: CallOptions["query"],
  ): string {
    const ps = params as Record<string, string>;
    let path: string = route.replace(/\{(\w+)\}/g, (_, name: string) =>
      segment(SEGMENT_NAMES[name] ?? name, ps[name] as string),
    );
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) q.set(k, String(v));
    }
    const qs = q.toString();
    if (qs !== "") path += `?${qs}`;
    return this.baseUrl + path;
  }

  async #send(
    method: HttpMethod,
    url: string,
    body: unknown,
    signal: AbortSignal | undefined,
    timeoutMs: number | null = this.#timeoutMs,
  ): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
      "user-agent": `amika-sdk-typescript/${SDK_VERSION}`,
    };
    const binary = isBytes(body);
    if (body !== undefined) {
      headers["content-type"] = binary ? "application/octet-stream" : "application/json";
    }
    const request = `${method.toUpperCase()} ${url}`;
    let resp: Response;
    try {
      resp = await this.#fetch(url, {
        method: method.toUpperCase(),
        headers,
        body: body === undefined ? undefined : binary ? (body as BodyInit) : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      const name = (e as { name?: string })?.name;
      if (name === "TimeoutError") {
        throw new AmikaNetworkError(
          `no answer from the amika server within ${timeoutMs} ms (${request})`,
          request,
          e,
        );
      }
      if (name === "AbortError") throw e;
      if (causeCode(e) === "UND_ERR_HEADERS_TIMEOUT") {
        // Node's fetch stops waiting for an answer after 300 s, whatever the server's deadline.
        throw new AmikaNetworkError(
          `the amika server did not answer ${request} before fetch's own headers timeout ` +
            `(Node's built-in fetch waits 300 s): for agent runs that long use ` +
            `startAgentSendJob and waitForAgentSendJob, or give the client a fetch without ` +
            `that limit (see the SDK's README)`,
          request,
          e,
        );
      }
      throw new AmikaNetworkError(
        `cannot reach the amika server at ${this.baseUrl} (${describeCause(e)}) for ${request}`,
        request,
        e,
      );
    }
    if (!resp.ok) throw await this.#apiError(resp, `${method.toUpperCase()} ${new URL(url).pathname}`);
    return resp;
  }

  async #apiError(resp: Response, request: string): Promise<AmikaApiError> {
    const headerTrace = resp.headers.get("x-trace-id") ?? "";
    let text = "";
    try {
      text = await resp.text();
    } catch {
      // The body broke off: the status still says what happened.
    }
    let env: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
        env = parsed as Record<string, unknown>;
      }
    } catch {
      // Not our envelope (e.g. a proxy's HTML page): fall back to the status.
    }
    const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    return new AmikaApiError({
      status: resp.status,
      code: str(env?.code) ?? str(env?.error_code) ?? `http_${resp.status}`,
      message:
        str(env?.message) ??
        `${request}: HTTP ${resp.status} ${resp.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`,
      traceId: str(env?.trace_id) ?? headerTrace,
      details: Array.isArray(env?.details) ? (env.details as ErrorDetail[]) : [],
      request,
    });
  }

  async #call<T, R extends Route>(
    method: MethodOf<R>,
    route: R,
    params: Record<ParamsOf<R>, string>,
    opts: CallOptions = {},
  ): Promise<T> {
    const url = this.#url(route, params, opts.query);
    const body =
      opts.body === undefined || opts.raw || isBytes(opts.body) ? opts.body : toWire(opts.body);
    const timeoutMs = opts.timeoutMs === undefined ? this.#timeoutMs : opts.timeoutMs;
    const signal = anySignal(
      opts.signal,
      timeoutMs === null ? undefined : AbortSignal.timeout(timeoutMs),
    );
    const resp = await this.#send(method, url, body, signal, timeoutMs);
    opts.onHeaders?.(resp.headers);
    let text: string;
    try {
      text = await resp.text();
    } catch (e) {
      throw new AmikaNetworkError(
        `the answer to ${method.toUpperCase()} ${url} broke off (${describeCause(e)})`,
        `${method.toUpperCase()} ${url}`,
        e,
      );
    }
    if (text === "") return undefined as T;
    const json: unknown = JSON.parse(text);
    return (opts.raw ? json : fromWire<T>(json)) as T;
  }

  /**
   * The pages of a list (`limit`, `cursor` in; the next cursor in `X-Next-Cursor`), one array at
   * a time as they arrive. A server that does not page (the public Amika API) answers the whole
   * list as one page.
   */
  async *#pages<T, R extends Route>(
    route: R,
    params: Record<ParamsOf<R>, string>,
    limit: number = PAGE_SIZE,
  ): AsyncGenerator<T[]> {
    let cursor: string | undefined;
    for (;;) {
      let next: string | undefined;
      const items = await this.#call<T[], R>("get" as MethodOf<R>, route, params, {
        query: { limit, cursor },
        onHeaders: (h) => {
          next = h.get("x-next-cursor") || undefined;
        },
      });
      yield items;
      // A cursor that does not move would loop for ever: stop rather than hang.
      if (next === undefined || next === cursor) return;
      cursor = next;
    }
  }

  async #listAll<T, R extends Route>(route: R, params: Record<ParamsOf<R>, string>): Promise<T[]> {
    const all: T[] = [];
    for await (const page of this.#pages<T, R>(route, params)) all.push(...page);
    return all;
  }

  /** Your secrets and your org's a page at a time (`limit` per page, 1..1000), as they arrive. */
  secretPages(limit: number = PAGE_SIZE): AsyncGenerator<Secret[]> {
    return this.#pages<Secret, "/api/v0beta1/secrets">("/api/v0beta1/secrets", {}, limit);
  }

  // ---------------------------------------------------------------- me

  /** Who the access token belongs to. */
  me(): Promise<Me> {
    return this.#call("get", "/api/v0beta1/me", {});
  }

  // ---------------------------------------------------------------- sandboxes

  /** Create a sandbox (answered at once, usually `initializing`; see `waitUntilReady`). */
  createSandbox(input: CreateSandboxInput): Promise<Sandbox> {
    return this.#call("post", "/api/v0beta1/sandboxes", {}, { body: sandboxBody(input) });
  }

  /** What `createSandbox(input)` would resolve to, creating nothing. */
  resolvePreview(input: CreateSandboxInput): Promise<ResolutionPreview> {
    return this.#call("post", "/api/v0beta1/sandboxes/resolve-preview", {}, {
      body: sandboxBody(input),
    });
  }

  getSandbox(idOrName: string): Promise<Sandbox> {
    return this.#call("get", "/api/v0beta1/sandboxes/{id}", { id: idOrName });
  }

  listSandboxes(): Promise<Sandbox[]> {
    return this.#listAll("/api/v0beta1/sandboxes", {});
  }

  async deleteSandbox(idOrName: string): Promise<void> {
    await this.#call("delete", "/api/v0beta1/sandboxes/{id}", { id: idOrName });
  }

  /** Start a stopped or failed sandbox, injecting the current values of its secrets. */
  async startSandbox(idOrName: string): Promise<void> {
    await this.#call("post", "/api/v0beta1/sandboxes/{id}/start", { id: idOrName });
  }

  async stopSandbox(idOrName: string): Promise<void> {
    await this.#call("post", "/api/v0beta1/sandboxes/{id}/stop", { id: idOrName });
  }

  /**
   * A new short-lived SSH token for a running sandbox (the public Amika SDK's `getSSH`):
   * `ssh ${sshDestination}` (split on whitespace) opens a shell in it. The server must run its
   * SSH endpoint (`--ssh-listen`).
   */
  async getSSH(idOrName: string, options: GetSSHOptions = {}): Promise<SshAccess> {
    const body = options.ttlSecs === undefined ? undefined : { ttl_secs: options.ttlSecs };
    return this.#call("post", "/api/v0beta1/sandboxes/{id}/ssh", { id: idOrName }, { body });
  }

  /** Revoke an SSH token of the sandbox (the public Amika SDK's `revokeSSH`). */
  async revokeSSH(idOrName: string, token: string): Promise<void> {
    await this.#call("delete", "/api/v0beta1/sandboxes/{id}/ssh", { id: idOrName }, {
      body: { token },
    });
  }

  /** Your registered SSH public keys. */
  listSSHPublicKeys(): Promise<SshPublicKey[]> {
    return this.#listAll("/api/v0beta1/secrets/ssh-public-keys", {});
  }

  /**
   * Register a public key: then `ssh -p PORT SANDBOX_NAME@HOST` logs in to a running sandbox of
   * yours with the matching private key (a key is unique across the server).
   */
  createSSHPublicKey(input: CreateSshPublicKeyInput): Promise<SshPublicKey> {
    return this.#call("post", "/api/v0beta1/secrets/ssh-public-keys", {}, { body: input });
  }

  /** Remove a registered key (by id or name): logins with it are refused from now on. */
  async deleteSSHPublicKey(idOrName: string): Promise<void> {
    await this.#call("delete", "/api/v0beta1/secrets/ssh-public-keys/{id}", { id: idOrName });
  }

  /**
   * Poll until the sandbox is `running` and return it. Throws `AmikaSandboxFailedError` (with
   * the server's `errorMessage`) if it is `failed`, `AmikaTimeoutError` after `timeoutMs`.
   */
  async waitUntilReady(idOrName: string, options: WaitOptions = {}): Promise<Sandbox> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const intervalMs = options.intervalMs ?? 200;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const sb = await this.getSandbox(idOrName);
      if (sb.state === "running") return sb;
      if (sb.state === "failed") throw new AmikaSandboxFailedError(sb);
      const left = deadline - Date.now();
      if (left <= 0) throw new AmikaTimeoutError(sb, timeoutMs);
      await new Promise((r) => setTimeout(r, Math.min(intervalMs, left)));
    }
  }

  /**
   * Run a command in a running sandbox and yield its output frames as they arrive (redacted:
   * every injected value reads `[REDACTED:<name>]`). Leaving the loop early closes the stream,
   * which kills the command on the server.
   */
  async *execStream(
    idOrName: string,
    command: string[],
    options: ExecOptions = {},
  ): AsyncGenerator<ExecFrame, void, undefined> {
    const { frames } = await this.#openExec(idOrName, command, options);
    yield* frames;
  }

  /**
   * Run a command and collect its whole output. Throws `AmikaExecError` on an error frame or a
   * stream that ends without an exit status; a non-zero exit code is a result, not an error.
   */
  async exec(idOrName: string, command: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const { frames, traceId } = await this.#openExec(idOrName, command, options);
    let stdout = "";
    let stderr = "";
    for await (const frame of frames) {
      switch (frame.stream) {
        case "stdout":
          stdout += frame.data;
          break;
        case "stderr":
          stderr += frame.data;
          break;
        case "exit":
          return { stdout, stderr, exitCode: frame.code };
        case "error":
          throw new AmikaExecError(`exec in sandbox ${idOrName} failed: ${frame.message}`, traceId);
      }
    }
    throw new AmikaExecError(
      `the exec stream of sandbox ${idOrName} ended without an exit status`,
      traceId,
    );
  }

  /**
   * The output of the sandbox's setup script as frames (redacted like exec output), ending with
   * its `exit` frame. Without `follow` it yields what there is now; with `follow` it keeps
   * reading while the script runs. A sandbox that ran no setup script is a 404
   * `AmikaApiError`.
   */
  async *setupLog(
    idOrName: string,
    options: SetupLogOptions = {},
  ): AsyncGenerator<ExecFrame, void, undefined> {
    const url = this.#url("/api/v0beta1/sandboxes/{id}/setup-log", { id: idOrName }, {
      follow: options.follow ? "true" : undefined,
    });
    const resp = await this.#send("get", url, undefined, options.signal, null);
    const traceId = resp.headers.get("x-trace-id") ?? "";
    yield* readFrames(resp, traceId, `GET ${url}`, "setup log");
  }

  /**
   * Send a local repository (the bytes of a `git bundle`, e.g. from
   * `git bundle create - --all`) for a create to use: pass the answer's `id` as
   * `workspaceUpload` to `createSandbox` within the hour. The server keeps it for its owner only
   * and removes it once a create has used it.
   */
  uploadWorkspace(bundle: Bytes, options: UploadWorkspaceOptions): Promise<WorkspaceUpload> {
    if (!isBytes(bundle)) {
      throw new AmikaError("uploadWorkspace: the bundle must be a Uint8Array, ArrayBuffer or Blob");
    }
    return this.#call("post", "/api/v0beta1/workspace-uploads", {}, {
      body: bundle,
      query: { repo_name: options.repoName, origin_url: options.originUrl },
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? null,
    });
  }

  /** Send the exec request (errors before the stream starts are `AmikaApiError`s). */
  async #openExec(
    idOrName: string,
    command: string[],
    options: ExecOptions,
  ): Promise<{ traceId: string; frames: AsyncGenerator<ExecFrame, void, undefined> }> {
    const url = this.#url("/api/v0beta1/sandboxes/{id}/exec", { id: idOrName });
    const body = toWire({ command, cwd: options.cwd, timeoutSecs: options.timeoutSecs });
    const resp = await this.#send("post", url, body, options.signal);
    const traceId = resp.headers.get("x-trace-id") ?? "";
    return { traceId, frames: readFrames(resp, traceId, `POST ${url}`, "exec") };
  }

  // ---------------------------------------------------------------- agent send

  /**
   * Send a message to the agent (Claude Code, Codex) in a running sandbox and wait for its
   * reply. The agent runs with exactly the credential resolved for its kind at create; the
   * reply is redacted (`[REDACTED:<name>]` for every injected value). A failed run is a reply
   * with `isError: true` and an `errorCode`, except an agent that could not authenticate with
   * its provider: that is an `AmikaApiError` (422 `agent_auth_failed`) whose `message` is
   * amika's and whose `details[0]` (`field: "agent"`) carries the agent's own. An agent kind that
   * was skipped at create is an `AmikaApiError` (422 `agent_credential_skipped`) and starts
   * nothing.
   *
   * The request lasts as long as the agent: at most `timeoutSecs` (plus the client's
   * `timeoutMs` as a margin) when given, else the server's deadline (10 minutes by default).
   * Aborting `signal` closes the connection, which kills the agent. Node's built-in fetch
   * gives up after 300 s without an answer: use the job form for longer runs.
   */
  agentSend(
    sandbox: string,
    input: AgentSendInput & AgentSendCallOptions,
  ): Promise<AgentSendResponse> {
    const { signal, ...body } = input;
    return this.#call("post", "/api/v0beta1/sandboxes/{id}/agent-send", { id: sandbox }, {
      body,
      signal,
      timeoutMs: body.timeoutSecs === undefined ? null : body.timeoutSecs * 1000 + this.#timeoutMs,
    });
  }

  /**
   * Send a message to the agent and yield its progress as it comes: `status` (`pending`, then
   * `running`), `delta`s (text, thinking, tool calls and their results, redacted), then `done`
   * (the answer as `agentSend` returns it). The request goes out when the iteration starts;
   * errors before the agent starts (a bad request, a skipped kind, a busy session) are thrown
   * by the first step as `AmikaApiError`s, as `agentSend` throws them. An agent that could not
   * authenticate ends the iteration with the `AmikaApiError` `agentSend` throws (422
   * `agent_auth_failed`, the agent's message in `details`). Leaving the loop early or aborting
   * `signal` closes the connection, which stops the agent (the send is recorded
   * `agent_cancelled`). No client timeout applies; the server's deadline (or `timeoutSecs`) does.
   */
  async *agentSendStream(
    sandbox: string,
    input: AgentSendInput,
    options: AgentStreamOptions = {},
  ): AsyncGenerator<AgentStreamEvent, void, undefined> {
    const url = this.#url("/api/v0beta1/sandboxes/{id}/agent-send/stream", { id: sandbox });
    const resp = await this.#send("post", url, toWire(input), options.signal, null);
    yield* readAgentEvents(resp, `POST ${new URL(url).pathname}`);
  }

  /**
   * Follow a send (a job from `startAgentSendJob`, or any other form of send) from its `status`
   * to its `done`, as `agentSendStream` yields them; a send that has already ended gives its
   * final `status` and `done` at once. Leaving the loop or aborting `signal` leaves the send
   * running. A job that does not exist is an `AmikaApiError` (404).
   */
  async *followAgentSendJob(
    sandbox: string,
    jobId: string,
    options: AgentStreamOptions = {},
  ): AsyncGenerator<AgentStreamEvent, void, undefined> {
    const url = this.#url("/api/v0beta1/sandboxes/{id}/agent-send-jobs/{job_id}/events", {
      id: sandbox,
      job_id: jobId,
    });
    const resp = await this.#send("get", url, undefined, options.signal, null);
    yield* readAgentEvents(resp, `GET ${new URL(url).pathname}`);
  }

  /**
   * Start a send in the background and return its job at once (`pending` or `running`);
   * follow it with `getAgentSendJob` or `waitForAgentSendJob`. Refused like `agentSend`.
   */
  startAgentSendJob(sandbox: string, input: AgentSendInput): Promise<AgentSendJob> {
    return this.#call("post", "/api/v0beta1/sandboxes/{id}/agent-send-jobs", { id: sandbox }, {
      body: input,
    });
  }

  /** A job as it is now; once `done` or `failed` it carries the whole `response`. */
  getAgentSendJob(sandbox: string, jobId: string): Promise<AgentSendJob> {
    return this.#call("get", "/api/v0beta1/sandboxes/{id}/agent-send-jobs/{job_id}", {
      id: sandbox,
      job_id: jobId,
    });
  }

  /**
   * Poll a job until it is `done` or `failed` and return it (a failed job is a result: see
   * its `response.errorCode`). Throws `AmikaAgentJobTimeoutError` after `timeoutMs`; the job
   * itself goes on until the server's deadline.
   */
  async waitForAgentSendJob(
    sandbox: string,
    jobId: string,
    options: WaitForAgentSendJobOptions = {},
  ): Promise<FinishedAgentSendJob> {
    const timeoutMs = options.timeoutMs ?? 660_000;
    const intervalMs = options.intervalMs ?? 250;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.getAgentSendJob(sandbox, jobId);
      if (job.state === "done" || job.state === "failed") return job as FinishedAgentSendJob;
      const left = deadline - Date.now();
      if (left <= 0) throw new AmikaAgentJobTimeoutError(sandbox, job, timeoutMs);
      await new Promise((r) => setTimeout(r, Math.min(intervalMs, left)));
    }
  }

  /** The sandbox's agent sessions, most recently used first, without transcripts. */
  listSessions(sandbox: string, options: ListSessionsOptions = {}): Promise<AgentSessionsList> {
    return this.#call("get", "/api/v0beta1/sandboxes/{id}/sessions", { id: sandbox }, {
      query: { status: options.status, limit: options.limit, offset: options.offset },
    });
  }

  /** One session with its `transcript`: every message and reply, oldest first, redacted. */
  getSession(sandbox: string, sessionId: string): Promise<AgentSession> {
    return this.#call("get", "/api/v0beta1/sandboxes/{id}/sessions/{session_id}", {
      id: sandbox,
      session_id: sessionId,
    });
  }

  /**
   * Start a session with no sends yet (`idle`); the first `agentSend` with its `sessionId`
   * starts the agent's conversation. `metadata` is the caller's own object (at most 16 KiB as
   * JSON), returned as given. A kind the sandbox holds no credential for is an
   * `AmikaApiError` (422 `agent_credential_skipped`).
   */
  createSession(sandbox: string, input: CreateSessionInput): Promise<AgentSession> {
    return this.#call("post", "/api/v0beta1/sandboxes/{id}/sessions", { id: sandbox }, {
      body: input,
    });
  }

  /**
   * The sandbox's most recently used session (of `agent`, when given), without its
   * transcript; `null` when it has none (the server's 404).
   */
  async getLatestSession(
    sandbox: string,
    options: LatestSessionOptions = {},
  ): Promise<AgentSession | null> {
    try {
      return await this.#call("get", "/api/v0beta1/sandboxes/{id}/sessions/latest", { id: sandbox }, {
        query: { agent: options.agent },
      });
    } catch (e) {
      // A 404 for the sandbox itself says "sandbox"; for no session, "session".
      if (e instanceof AmikaApiError && e.status === 404 && !/^sandbox /.test(e.message)) {
        return null;
      }
      throw e;
    }
  }

  /**
   * Change a session's `status` (`idle`, `completed`, `failed`, `cancelled`) and merge into its
   * `metadata` (RFC 7386: a key set to `null` is removed). Changing the status while a send
   * runs in the session is an `AmikaApiError` (409).
   */
  updateSession(
    sandbox: string,
    sessionId: string,
    input: UpdateSessionInput,
  ): Promise<AgentSession> {
    return this.#call("patch", "/api/v0beta1/sandboxes/{id}/sessions/{session_id}", {
      id: sandbox,
      session_id: sessionId,
    }, { body: input });
  }

  // ---------------------------------------------------------------- secrets

  listSecrets(): Promise<Secret[]> {
    return this.#listAll("/api/v0beta1/secrets", {});
  }

  createSecret(input: CreateSecretInput): Promise<Secret> {
    return this.#call("post", "/api/v0beta1/secrets", {}, { body: input });
  }

  /** Update by id or name; a new `value` stores a new version. */
  updateSecret(idOrName: string, input: UpdateSecretInput): Promise<Secret> {
    return this.#call("put", "/api/v0beta1/secrets/{id}", { id: idOrName }, { body: input });
  }

  async deleteSecret(idOrName: string): Promise<void> {
    await this.#call("delete", "/api/v0beta1/secrets/{id}", { id: idOrName });
  }

  /** The secret's plaintext value (audited; the server may have reveal turned off). */
  async revealSecret(idOrName: string): Promise<string> {
    const r = await this.#call<{ value: string }, "/api/v0beta1/secrets/{id}/reveal">(
      "post",
      "/api/v0beta1/secrets/{id}/reveal",
      { id: idOrName },
    );
    return r.value;
  }

  // ---------------------------------------------------------------- agent credentials

  listProviderSecrets(kind: AgentKind): Promise<AgentCredential[]> {
    return this.#listAll(kindRoute(kind, ""), {});
  }

  createProviderSecret(kind: AgentKind, input: CreateProviderSecretInput): Promise<AgentCredential> {
    return this.#call("post", kindRoute(kind, ""), {}, {
      body: { ...input, type: normalizeCredentialType(input.type) },
    });
  }

  updateProviderSecret(
    kind: AgentKind,
    idOrName: string,
    input: UpdateProviderSecretInput,
  ): Promise<AgentCredential> {
    return this.#call("put", kindRoute(kind, "/{id}"), { id: idOrName }, {
      body: { ...input, type: normalizeCredentialType(input.type) },
    });
  }

  async deleteProviderSecret(kind: AgentKind, idOrName: string): Promise<void> {
    await this.#call("delete", kindRoute(kind, "/{id}"), { id: idOrName });
  }

  /** The credential's plaintext value (audited; the server may have reveal turned off). */
  async revealProviderSecret(kind: AgentKind, idOrName: string): Promise<string> {
    const r = await this.#call<{ value: string }, "/api/v0beta1/secrets/claude/{id}/reveal">(
      "post",
      kindRoute(kind, "/{id}/reveal"),
      { id: idOrName },
    );
    return r.value;
  }

  // ---------------------------------------------------------------- api keys (camelCase wire)

  listApiKeys(): Promise<ApiKeyList> {
    return this.#call("get", "/api/v0beta1/api-keys", {}, { raw: true });
  }

  /** A new API key for the caller; its `value` is shown only here. */
  createApiKey(input: CreateApiKeyInput): Promise<ApiKeyWithValue> {
    return this.#call("post", "/api/v0beta1/api-keys", {}, { body: { name: input.name }, raw: true });
  }

  async deleteApiKey(id: string): Promise<void> {
    await this.#call("delete", "/api/v0beta1/api-keys/{id}", { id }, { raw: true });
  }

  // ---------------------------------------------------------------- audit

  /** Newest first. Events never carry a value. */
  listAuditEvents(options: ListAuditEventsOptions = {}): Promise<AuditEvent[]> {
    return this.#call("get", "/api/v0beta1/audit-events", {}, { query: { limit: options.limit } });
  }

  // ---------------------------------------------------------------- snapshots

  /** The caller's snapshots, newest first (`items`), optionally of one source sandbox. */
  listSandboxSnapshots(options: ListSandboxSnapshotsOptions = {}): Promise<SnapshotList> {
    return this.#call("get", "/api/v0beta1/sandbox-snapshots", {}, {
      query: { source_sandbox_id: options.sourceSandboxId, repository_id: options.repositoryId },
    });
  }

  /**
   * Capture a sandbox. Answers at once with the snapshot `capturing` (the sandbox is
   * `snapshotting`); poll `getSandboxSnapshot` until `active` or `failed`. A refused scrub is
   * `failed`, its `errorMessage` naming the files and secrets found (never a value).
   */
  createSandboxSnapshot(input: CreateSandboxSnapshotInput): Promise<SandboxSnapshot> {
    return this.#call("post", "/api/v0beta1/sandbox-snapshots", {}, { body: input });
  }

  getSandboxSnapshot(ref: string): Promise<SandboxSnapshot> {
    return this.#call("get", "/api/v0beta1/sandbox-snapshots/{ref}", { ref });
  }

  /** What a `scrub_and_delete` capture of the sandbox removes: files and env var names. */
  getSandboxScrubPreview(sandbox: string): Promise<ScrubPreview> {
    return this.#call("get", "/api/v0beta1/sandbox-snapshots/scrub-preview", {}, {
      query: { sandbox, by: "ref" },
    });
  }

  async deleteSandboxSnapshot(ref: string): Promise<void> {
    await this.#call("delete", "/api/v0beta1/sandbox-snapshots/{ref}", { ref }, {
      query: { by: "ref" },
    });
  }

  // ---------------------------------------------------------------- presets

  /**
   * The server's presets (e.g. `coder`: the real Claude Code and Codex CLIs), installed or not,
   * with their pinned packages and installed versions. Any signed-in user.
   */
  listPresets(): Promise<PresetList> {
    return this.#call("get", "/api/v0beta1/presets", {});
  }

  /**
   * Install the preset's pinned version on the server (admins; also the update: a new version
   * goes beside the old ones) and resolve with the preset once it is installed; at once when it
   * already is. `onProgress` gets every progress line as it arrives. Refusals before the install
   * starts are `AmikaApiError`s (403 for a non-admin, 404 for an unknown preset); a failed
   * install rejects with an `AmikaApiError` (503 `provider_unavailable`) carrying the server's
   * message. No timeout: an install on a fresh machine downloads a few hundred MB; aborting
   * `signal` stops following it, not the install.
   */
  async installPreset(name: string, options: InstallPresetOptions = {}): Promise<Preset> {
    const url = this.#url("/api/v0beta1/presets/{name}/install", { name });
    const resp = await this.#send("post", url, undefined, options.signal, null);
    return followPresetInstall(resp, `POST ${new URL(url).pathname}`, options.onProgress);
  }

  /**
   * Remove the preset's installed versions that no sandbox uses (admins), or only `version`;
   * versions in use are kept and listed with their sandboxes.
   */
  removePreset(name: string, options: RemovePresetOptions = {}): Promise<PresetRemoval> {
    return this.#call("delete", "/api/v0beta1/presets/{name}", { name }, {
      query: { version: options.version },
    });
  }
}

function sandboxBody(input: CreateSandboxInput): unknown {
  return {
    ...input,
    agentCredentials: input.agentCredentials?.map((r) => ({
      ...r,
      type: normalizeCredentialType(r.type),
    })),
  };
}

/** Newline-delimited JSON frames from a streamed answer, as they arrive. */
async function* readFrames(
  resp: Response,
  traceId: string,
  request: string,
  what: "exec" | "setup log",
): AsyncGenerator<ExecFrame, void, undefined> {
  if (!resp.body) throw new AmikaExecError(`the ${what} answer has no body`, traceId);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const parse = (line: string): ExecFrame => {
    try {
      return JSON.parse(line) as ExecFrame;
    } catch {
      throw new AmikaExecError(`bad ${what} frame from the server: ${line.slice(0, 200)}`, traceId);
    }
  };
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if ((e as { name?: string })?.name === "AbortError") throw e;
        throw new AmikaNetworkError(`the ${what} stream broke off (${describeCause(e)})`, request, e);
      }
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line !== "") yield parse(line);
      }
    }
    buffered += decoder.decode();
    if (buffered.trim() !== "") yield parse(buffered.trim());
  } finally {
    // Stops the download when the caller leaves early (which kills the command); a no-op at the end.
    await reader.cancel().catch(() => {});
  }
}
