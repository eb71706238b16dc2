/**
 * The SDK's public types: camelCase views of the wire schemas in `docs/openapi.json`.
 *
 * They are written by hand (so editors show readable names and docs), and then checked at
 * compile time against the snake_case types that `openapi-typescript` generated from the
 * server's document (`src/generated/openapi.ts`): a field added, removed, renamed or retyped on
 * the server breaks `tsc` here until the SDK follows. See the `Checks` block at the end.
 */
import type { components, operations } from "./generated/openapi.js";

type Schemas = components["schemas"];

// ------------------------------------------------------------------ enums

export type AgentKind = Schemas["AgentKind"];
export type Scope = Schemas["Scope"];
/** How an agent credential authenticates, as the server reports it. */
export type CredentialType = Schemas["CredentialType"];
/** Inputs also accept `api-key` as a spelling of `api_key` (outputs always say `api_key`). */
export type CredentialTypeInput = CredentialType | "api-key";
export type SandboxState = Schemas["SandboxState"];
export type NetworkMode = Schemas["NetworkMode"];
export type ResolutionOutcome = Schemas["ResolutionOutcome"];
/** A sandbox's size: `xs` 512 MiB / 256 processes, `s` 1024 / 512, `m` 2048 / 1024,
 * `l` 4096 / 2048, `xl` 8192 / 4096. */
export type SandboxSize = Schemas["SandboxSize"];
/** Where a setup script stands (`SetupOutcome.state`). */
export type SetupState = "pending" | "running" | "succeeded" | "failed" | "timed_out" | "skipped";

// ------------------------------------------------------------------ errors

/** The machine-readable code of an error answer; `AmikaApiError.code` holds one of these (or
 * `http_<status>` when the answer had no envelope). Branch on it, never on the message. */
export type ErrorCode = Schemas["ErrorCode"];

/** One request field an error is about, in `AmikaApiError.details`. */
export interface ErrorDetail {
  /** The field as a JSON path into the request: `name`, `message`,
   * `secret_env_vars.DATABASE_URL`, `agent_credentials[1].type`. */
  field: string;
  /** An `ErrorCode`, typed as a string so that a code newer than this SDK still reads. */
  code: ErrorCode | (string & {});
  message: string;
}

// ------------------------------------------------------------------ secrets

/** A generic secret (for env injection), never with its value. */
export interface Secret {
  id: string;
  orgId: string;
  userId: string;
  name: string;
  description: string | null;
  scope: Scope;
  /** Increases with every new value. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface CreateSecretInput {
  /** Letters, digits, `_`, `-` and `.`, e.g. `DATABASE_URL`. */
  name: string;
  value: string;
  /** `user` (default: private) or `org` (visible to every member of the org). */
  scope?: Scope;
  description?: string;
}

/** Every field optional; a new `value` stores a new version. */
export interface UpdateSecretInput {
  name?: string;
  value?: string;
  scope?: Scope;
  description?: string;
}

// ------------------------------------------------------------------ agent credentials

/** A provider credential (`claude` or `codex` for an agent, `github` for cloning private
 * repositories), never with its value. */
export interface AgentCredential {
  id: string;
  kind: AgentKind;
  name: string;
  type: CredentialType;
  scope: Scope;
  isDefault: boolean;
  orgId: string;
  userId: string;
  version: number;
  /** For OAuth credentials, the token's `expiresAt` when the document has one. */
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface CreateProviderSecretInput {
  name: string;
  /** `oauth` (the agent's whole credential JSON) or `api_key` (also spelled `api-key`); a
   * `github` credential is a token: `api_key` only. */
  type: CredentialTypeInput;
  value: string;
  scope?: Scope;
  /** Make this the caller's default credential of its kind (user scope only). */
  isDefault?: boolean;
}

export interface UpdateProviderSecretInput {
  value?: string;
  type?: CredentialTypeInput;
  isDefault?: boolean;
}

// ------------------------------------------------------------------ api keys

export interface ApiKey {
  id: string;
  name: string;
  obfuscatedValue: string;
  lastUsedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A new API key: the only answer that carries its value. */
export interface ApiKeyWithValue extends ApiKey {
  value: string;
}

export interface PageInfo {
  after: string | null;
  hasNextPage: boolean;
}

export interface ApiKeyList {
  data: ApiKey[];
  pageInfo: PageInfo;
}

export interface CreateApiKeyInput {
  name: string;
}

// ------------------------------------------------------------------ audit

export interface AuditEvent {
  id: string;
  orgId: string;
  userId: string;
  /** e.g. `secret.created`, `secret.revealed`, `credential.injected`, `sandbox.created`. */
  action: string;
  objectType: string;
  objectId: string;
  objectName: string;
  version: number | null;
  sandboxId: string | null;
  /** Non-secret detail (names, ids, versions), exactly as the server sent it (keys unchanged). */
  detail: unknown;
  createdAt: string;
}

export interface ListAuditEventsOptions {
  /** At most this many events, newest first (1..=1000, server default 100). */
  limit?: number;
}

// ------------------------------------------------------------------ presets

/** One installed version of a preset: a read-only layer on the server. */
export interface PresetVersion {
  /** The version id (12 hex digits: a hash of the pinned packages). */
  id: string;
  /** npm package → exact version, as installed (names as npm spells them). */
  packages: Record<string, string>;
  installedAt: string;
  /** The host's Node.js that runs the packages, as `node --version` printed it at install. */
  node: string;
  /** Whether this is the version the server pins now. */
  current: boolean;
}

/** A preset this server knows (e.g. `coder`: the real Claude Code and Codex CLIs), installed or
 * not. A create with `preset` mounts its layer read-only and puts its `bin` on the `PATH`. */
export interface Preset {
  name: string;
  description: string;
  /** The npm packages this server pins, with their exact versions. */
  packages: Record<string, string>;
  /** Commands the layer puts on the sandbox's `PATH`, e.g. `["claude", "codex"]`. */
  bin: string[];
  /** The version id of the pinned packages (what `installPreset` installs). */
  current: string;
  /** Whether the current version is installed. */
  installed: boolean;
  /** Whether a create without `preset` gets this one (the server's `default_preset`). */
  default: boolean;
  /** Every installed version, newest first; sandboxes keep the version they were created with. */
  versions: PresetVersion[];
}

/** `listPresets`. */
export interface PresetList {
  presets: Preset[];
  /** How each agent may act when `agentSend` runs it (server config `agent_permissions`). */
  agentPermissions: AgentPermission[];
}

/**
 * An agent's permission policy: Claude Code's `--permission-mode` or Codex's `--sandbox` mode,
 * and the arguments its command gets for it.
 */
export interface AgentPermission {
  agent: AgentKind;
  mode: string;
  args: string[];
}

/** What a line of an install's progress stream is: `progress`, then one `done` or `error`. */
export type PresetInstallEventKind = Schemas["PresetInstallEventKind"];

/** One line of an install's progress (`installPreset`'s `onProgress` gets the `progress` ones). */
export interface PresetInstallEvent {
  event: PresetInstallEventKind;
  /** The step running (1-based) out of `steps`. */
  step: number;
  steps: number;
  /** What the step does, or a line of npm's output. */
  message: string;
  /** On the `done` line: the preset as installed. */
  preset?: Preset | null;
}

export interface InstallPresetOptions {
  /** Called with each `progress` line as it arrives (steps, npm's own output lines). */
  onProgress?: (event: PresetInstallEvent) => void;
  /** Stop following the install (the server finishes it anyway). */
  signal?: AbortSignal;
}

/** A version `removePreset` kept because sandboxes use it. */
export interface PresetVersionInUse {
  id: string;
  /** Names of the sandboxes that use it (delete them, then remove again). */
  sandboxes: string[];
}

/** What `removePreset` removed, and what it kept. */
export interface PresetRemoval {
  /** Version ids removed. */
  removed: string[];
  kept: PresetVersionInUse[];
}

export interface RemovePresetOptions {
  /** Remove only this version id (an `AmikaApiError` 404 when it is not installed). */
  version?: string;
}

// ------------------------------------------------------------------ sandboxes

/** One agent-credential reference of a create request. */
export interface AgentCredentialRef {
  kind: AgentKind;
  /** Pin this credential by name (yours first, then the org's). */
  name?: string;
  /** Pin the best credential of this type. */
  type?: CredentialTypeInput;
  /** Give this kind nothing. */
  none?: boolean;
}

export interface CreateSandboxInput {
  /** Unique among your sandboxes; absent or `""`: a generated, readable name. */
  name?: string;
  /** Env var name → secret name. The keys are env var names and are sent unchanged. */
  secretEnvVars?: Record<string, string>;
  /** At most one entry per kind. A kind left out gets nothing. A bare `{ kind }` takes the
   * repository's `.amika/config.toml` entry for that kind, else your or your org's default. */
  agentCredentials?: AgentCredentialRef[];
  /** `local` (the only provider of this server). */
  provider?: string;
  network?: NetworkMode;
  /** Memory limit in MiB (overrides the one `size` implies). */
  memoryMib?: number;
  /** Maximum number of processes (overrides the one `size` implies). */
  pids?: number;
  /** A repository the server clones into `~/workspace/<repo-name>`: `https://`, `http://`,
   * `ssh://`, `git://`, `file:///` (admins only) or `user@host:path`. `""`: none. */
  repoUrl?: string;
  /** The id of a `uploadWorkspace` answer, used instead of `repoUrl`. */
  workspaceUpload?: string;
  /** The branch to check out (default: the repository's default branch). */
  branch?: string;
  /** A new branch created from `branch` and checked out. */
  newBranchName?: string;
  /** A secret or `github` credential whose value is the clone's token over HTTPS (default: your
   * default `github` credential, for the server's GitHub hosts only). */
  gitCredential?: string;
  /** Plain env vars (not secrets: stored and shown as given). Keys are sent unchanged. */
  envVars?: Record<string, string>;
  /** Env vars of the repository's `.amika/config.toml` to leave out. */
  disabledRepoEnvVarNames?: string[];
  /** A script run inside the sandbox before it is `running`, instead of the repository's
   * `setup_script`. */
  setupScriptText?: string;
  /** Run no setup script at all (not even the repository's). */
  skipSetupScript?: boolean;
  /** Seconds before a setup script still running is killed (default 1800). */
  setupTimeoutSecs?: number;
  /** A preset this server has. */
  preset?: string;
  /** Memory and process limits by size. */
  size?: SandboxSize;
  /** Start from this snapshot (its name or id): home and workspace are the snapshot's. */
  snapshot?: string | null;
  /** Minutes without exec or agent activity after which the sandbox is stopped; 0: never. */
  autoStopInterval?: number;
  /** Minutes without exec or agent activity after which the sandbox is deleted; 0 or -1: never. */
  autoDeleteInterval?: number;
}

/** What was resolved (or skipped, and why) for one agent kind. */
export interface ResolvedAgentCredential {
  kind: AgentKind;
  outcome: ResolutionOutcome;
  /** The credential's name, `""` when skipped. */
  name: string;
  /** `oauth` / `api_key`, `""` when skipped. */
  type: string;
  /** `request:name`, `request:type`, `repo_config`, `user_default`, `org_default` or
   * `no-credential`. */
  source: string;
  reason: string;
}

/** What a repository's `.amika/config.toml` contributed (names only, never values of secrets). */
export interface RepoConfigApplied {
  /** Plain env vars it set (the request's own won where both named one). */
  envVars: string[];
  /** Env vars it mapped to secrets. */
  secretEnvVars: string[];
  /** Kinds whose credential it chose. */
  agentCredentials: AgentKind[];
  /** Its setup script, relative to the repository's root. */
  setupScript: string | null;
}

/** A sandbox's setup script and how it went. */
export interface SetupOutcome {
  /** `request` (`setupScriptText`) or `repo_config` (the repository's `setup_script`). */
  source: string;
  /** The repository's script path, for `repo_config`. */
  script: string | null;
  /** A `SetupState`: `pending`, `running`, `succeeded`, `failed`, `timed_out` or `skipped`. */
  state: string;
  exitCode: number | null;
  startedAt: string | null;
  endedAt: string | null;
}

export interface Sandbox {
  id: string;
  name: string;
  userId: string;
  orgId: string;
  provider: string;
  providerSandboxId: string | null;
  providerUrl: string | null;
  amikaOpencodeWeb: string | null;
  repoName: string | null;
  repoProvider: string | null;
  repoId: string | null;
  repoUrl: string | null;
  branch: string | null;
  commitHash: string | null;
  snapshot: string | null;
  currentSessionId: string | null;
  services: unknown[] | null;
  /** `running` is the ready state. */
  state: SandboxState;
  errorMessage: string | null;
  network: NetworkMode;
  memoryMib: number | null;
  pids: number | null;
  secretNames: string[];
  resolvedAgentCredentials: ResolvedAgentCredential[];
  /** Plain env vars set in the sandbox (request and repository config), values as given. */
  envVars: Record<string, string>;
  preset: string | null;
  /** A `SandboxSize`, or null when none was asked for. */
  size: string | null;
  autoStopInterval: number | null;
  autoDeleteInterval: number | null;
  /** What the repository's `.amika/config.toml` contributed; null without one. */
  repoConfig: RepoConfigApplied | null;
  /** The setup script and how it went; null when none ran. */
  setup: SetupOutcome | null;
  /** Things the create did that may not be what was meant (on `createSandbox`'s answer only). */
  warnings?: string[];
  createdAt: string;
  updatedAt: string;
}

/** What a create would resolve to, creating nothing. */
export interface ResolutionPreview {
  secretNames: string[];
  resolvedAgentCredentials: ResolvedAgentCredential[];
  /** What the repository's `.amika/config.toml` would contribute (the server clones the
   * repository to read it); null without a repository or without the file. */
  repoConfig: RepoConfigApplied | null;
  /** Where an injection would not do what the report says (an env var beside a credential
   * that implies it), as the create would warn. */
  warnings: string[];
}

/** A repository sent with `uploadWorkspace`, kept by the server for an hour until a create
 * names it in `workspaceUpload` (a create consumes it). */
export interface WorkspaceUpload {
  id: string;
  /** The workspace directory's name (`~/workspace/<repoName>`). */
  repoName: string;
  /** The repository's origin as the client knows it (shown on the sandbox; never cloned). */
  originUrl: string | null;
  sizeBytes: number;
  expiresAt: string;
}

export interface UploadWorkspaceOptions {
  /** What the workspace directory will be called. */
  repoName: string;
  /** The repository's origin, shown on the sandbox (never cloned; leave credentials out). */
  originUrl?: string;
  /** Abort the upload. */
  signal?: AbortSignal;
  /** Give up after this long (default: no limit, a bundle may be large). */
  timeoutMs?: number;
}

export interface SetupLogOptions {
  /** Keep reading until the script ends (default: only what there is now). */
  follow?: boolean;
  /** Stop reading (closes the stream). */
  signal?: AbortSignal;
}

export interface ExecOptions {
  /** Working directory inside the sandbox; defaults to the workspace. */
  cwd?: string;
  /** Seconds before the server kills the command. */
  timeoutSecs?: number;
  /** Abort the command (closing the stream kills it on the server). */
  signal?: AbortSignal;
}

/** One frame of an exec's output stream. Output is redacted: `[REDACTED:<name>]`. */
export type ExecFrame =
  | { stream: "stdout"; data: string }
  | { stream: "stderr"; data: string }
  | { stream: "exit"; code: number }
  | { stream: "error"; message: string };

/** The whole output of an exec, collected. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface WaitOptions {
  /** Give up after this long (default 60 000 ms). */
  timeoutMs?: number;
  /** Time between polls (default 200 ms). */
  intervalMs?: number;
}

// ------------------------------------------------------------------ agent send

/** Where an agent send (a job, a turn of a session) is: `pending`, `running`, `done` or `failed`. */
export type AgentJobState = Schemas["AgentJobState"];
/**
 * `idle` (ready for a send), `running` (a send is in flight; the server's to set), `failed` (its
 * last send failed, or a client said so), `completed` and `cancelled` (set by a client).
 */
export type AgentSessionStatus = Schemas["AgentSessionStatus"];

/** A message for the agent in a sandbox (`agentSend`, `startAgentSendJob`). */
export interface AgentSendInput {
  /** The prompt; passed to the agent as one argument, never through a shell. */
  message: string;
  /** Default: the session's agent, else the first kind resolved for the sandbox, else `claude`. */
  agent?: AgentKind;
  /** Continue this session (a `sessionId` from an earlier answer). */
  sessionId?: string;
  /** Start a new session even if the sandbox has one (excludes `sessionId`). */
  newSession?: boolean;
  /** Seconds before the server stops the agent; at most its deadline (default 600). */
  timeoutSecs?: number;
  /**
   * The directory the agent runs in, inside the sandbox: absolute, or relative to the
   * workspace (`/home/amika/workspace/<repo>`, else `/home/amika/workspace`).
   */
  workdir?: string;
}

/** Options of `agentSend` beyond the message. */
export interface AgentSendCallOptions {
  /** Abort the send: the connection closes and the server kills the agent. */
  signal?: AbortSignal;
}

/**
 * The agent's reply, redacted: every value injected into the sandbox reads `[REDACTED:<name>]`.
 * A failed run (crash, deadline, cancellation) is a reply with `isError: true`, `response`
 * saying what happened and `errorCode` why, not an exception. An agent that could not
 * authenticate is the exception: `agentSend` and `agentSendStream` throw an `AmikaApiError`
 * (422 `agent_auth_failed`), while a job's `response` records it (`errorCode: "agent_auth_failed"`).
 */
export interface AgentSendResponse {
  /** amika's session id: pass it as `sessionId` to continue the conversation. */
  sessionId: string;
  /** The agent's own session id (absent when the agent gave none). */
  agentSessionId?: string | null;
  agent: AgentKind;
  /** This send's id, also its job id (`getAgentSendJob`). */
  jobId: string;
  response: string;
  isError: boolean;
  /** Whether the agent started a new conversation (was not asked to resume one). */
  isNewSession: boolean;
  /**
   * `agent_auth_failed`, `agent_unreachable`, `agent_crashed`, `agent_timeout`,
   * `agent_cancelled`, `agent_bad_output`, `sandbox_stopped`, ...; null on success.
   */
  errorCode: string | null;
  /** The agent process's exit status (128 + signal when killed); null when it never ended. */
  exitCode: number | null;
  /** What the agent reported the run cost (absent when it reported nothing). */
  costUsd?: number | null;
  durationMs: number;
}

/** An agent-send job: `startAgentSendJob` answers with it at once, `getAgentSendJob` polls it. */
export interface AgentSendJob {
  jobId: string;
  state: AgentJobState;
  sessionId: string;
  agent: AgentKind;
  agentSessionId: string | null;
  isNewSession: boolean;
  isError: boolean;
  /** The reply text once the job is `done` or `failed`, else null. */
  resultText: string | null;
  /** The whole answer once the job is `done` or `failed` (as `agentSend` gives it), else null. */
  response: AgentSendResponse | null;
  costUsd?: number | null;
  createdAt: string;
  updatedAt: string;
}

/** A job that has ended (`waitForAgentSendJob`): its reply is there. */
export type FinishedAgentSendJob = AgentSendJob & {
  state: "done" | "failed";
  resultText: string;
  response: AgentSendResponse;
};

/** One send of a session's transcript: the message and what came back (redacted). */
export interface AgentTurn {
  /** The send's id (= its job id). */
  id: string;
  state: AgentJobState;
  message: string;
  response: string | null;
  isError: boolean;
  errorCode: string | null;
  exitCode: number | null;
  isNewSession: boolean;
  agentSessionId: string | null;
  costUsd: number | null;
  createdAt: string;
  finishedAt: string | null;
}

/** A conversation with one agent in one sandbox. */
export interface AgentSession {
  id: string;
  sandboxId: string;
  orgId: string;
  /** The agent kind. */
  agentName: AgentKind;
  status: AgentSessionStatus;
  /** The agent's own id of the conversation, used to resume it. */
  agentSessionId: string | null;
  turnCount: number;
  startedAt: string;
  /** When a client marked it `completed`, `failed` or `cancelled`; null otherwise. */
  endedAt: string | null;
  /** The caller's own metadata (`createSession`, `updateSession`), keys as given. */
  metadata: Record<string, unknown>;
  /** What the server records, apart from `metadata`: `{ credential: "<name the agent runs with>" }`. */
  serverMetadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  /** Every send of the session, oldest first: only from `getSession`. */
  transcript?: AgentTurn[] | null;
}

/** A page of a sandbox's sessions, most recently used first. */
export interface AgentSessionsList {
  sessions: AgentSession[];
  /** How many sessions match, before `limit`/`offset`. */
  total: number;
}

/** `createSession`. */
export interface CreateSessionInput {
  /** `claude` or `codex` (`github` is a credential kind, not an agent). */
  agentName: Exclude<AgentKind, "github">;
  /** The caller's own object, at most 16 KiB as JSON; its keys are sent as given. */
  metadata?: Record<string, unknown>;
}

/** `updateSession`: absent fields stay as they are. */
export interface UpdateSessionInput {
  /** `running` is the server's to set. */
  status?: Exclude<AgentSessionStatus, "running">;
  /** Merged into the metadata (RFC 7386): a key set to `null` is removed. */
  metadata?: Record<string, unknown>;
}

/** `getLatestSession`. */
export interface LatestSessionOptions {
  /** Only this agent's sessions. */
  agent?: AgentKind;
}

export interface ListSessionsOptions {
  /** Only sessions in this status. */
  status?: AgentSessionStatus;
  /** At most this many (1..=1000, server default 100). */
  limit?: number;
  /** Skip this many first. */
  offset?: number;
}

export interface WaitForAgentSendJobOptions {
  /** Give up after this long (default 660 000 ms: the server's default deadline plus a minute). */
  timeoutMs?: number;
  /** Time between polls (default 250 ms). */
  intervalMs?: number;
}

export interface Me {
  userId: string;
  userName: string;
  orgId: string;
  orgName: string;
  isAdmin: boolean;
}

/** A new SSH token for a sandbox (`getSSH`); `ssh ${sshDestination}` opens a shell in it. */
export interface SshAccess {
  /** `ssh` arguments, split on whitespace: `-p PORT TOKEN@HOST`. */
  sshDestination: string;
  /** The token (the SSH user name), shown once. */
  token: string;
  expiresAt: string;
  repoName: string;
  /** The SSH endpoint's host key fingerprint (`SHA256:...`). */
  hostKeyFingerprint: string;
  /** The host key itself (`ssh-ed25519 AAAA...`), for a `known_hosts` line. */
  hostKey: string;
}

export interface GetSSHOptions {
  /** The token's lifetime in seconds (60 to 86400; default 3600). */
  ttlSecs?: number;
}

/** A registered SSH public key: logs in as `ssh -p PORT SANDBOX_NAME@HOST` to your sandboxes. */
export interface SshPublicKey {
  id: string;
  name: string;
  /** The key's algorithm, e.g. `ssh-ed25519`. */
  keyType: string;
  /** `SHA256:...`, as `ssh-keygen -lf` shows it. */
  fingerprint: string;
  /** The key without its comment: `ssh-ed25519 AAAA...`. */
  publicKey: string;
  createdAt: string;
}

export interface CreateSshPublicKeyInput {
  /** Your name for the key, unique among your keys. */
  name: string;
  /** One OpenSSH public key line (`ssh-ed25519 AAAA... comment`): Ed25519, ECDSA, RSA >= 2048. */
  publicKey: string;
}

// ------------------------------------------------------------------ snapshots

/** How a snapshot is taken: `scrub_and_delete` (default: injected credentials removed, and the
 * capture refused when an injected value is still in the sandbox's files; the source is
 * deleted once captured) or `full` (as is: unsafe; the source is kept). */
export type SnapshotMode = Schemas["SnapshotMode"];
export type SnapshotState = Schemas["SnapshotState"];

/** A snapshot: a sandbox's home and workspace, captured encrypted, to start sandboxes from. */
export interface SandboxSnapshot {
  id: string;
  /** Its slug (the name it was created with): what `createSandbox({ snapshot })` takes. */
  snapshot: string;
  /** `user` (only its creator sees it) or `org` (every member of the org starts from it). */
  scope: Scope;
  provider: string;
  description: string | null;
  mode: SnapshotMode;
  sourceSandboxId: string | null;
  sourceSandboxName: string | null;
  repositoryId: string | null;
  repoName: string | null;
  repoUrl: string | null;
  branch: string | null;
  baseSnapshot: string | null;
  sandboxPreset: string | null;
  sandboxSize: string | null;
  /** `capturing`, then `active` or `failed` (with `errorMessage`). */
  state: SnapshotState;
  errorMessage: string | null;
  /** Bytes of the encrypted archive, once captured. */
  sizeBytes: number | null;
  userId: string;
  orgId: string;
  createdAt: string;
  updatedAt: string;
}

/** `listSandboxSnapshots`. */
export interface SnapshotList {
  items: SandboxSnapshot[];
}

export interface ListSandboxSnapshotsOptions {
  /** Only snapshots of this source sandbox (its id or name). */
  sourceSandboxId?: string;
  repositoryId?: string;
}

export interface CreateSandboxSnapshotInput {
  /** The sandbox to capture: its name or id. */
  sandboxRef: string;
  name: string;
  description?: string;
  mode?: SnapshotMode;
  /** `org` shares it with the org: org admins only, `scrub_and_delete` only. Default `user`. */
  scope?: Scope;
}

/** What a `scrub_and_delete` capture removes, by path and name (never a value). */
export interface ScrubPreview {
  files: string[];
  envVars: string[];
}

// ================================================================== Checks
//
// Compile-time only (no code is emitted). `Camelize` turns a generated snake_case schema type
// into its camelCase view; each `Assert` below fails to compile when the SDK's type and the
// schema disagree.

type SnakeToCamel<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<SnakeToCamel<Tail>>}`
  : S;

/** Deep camelCase keys, except inside string-keyed maps (user data such as env var names). */
export type Camelize<T> = T extends readonly (infer U)[]
  ? Camelize<U>[]
  : T extends object
    ? string extends keyof T
      ? T
      : { [K in keyof T as K extends string ? SnakeToCamel<K> : K]: Camelize<T[K]> }
    : T;

/** Every field present, `undefined` removed, deeply: how answers are compared. */
type Strict<T> = T extends readonly (infer U)[]
  ? Strict<U>[]
  : T extends object
    ? string extends keyof T
      ? T
      : { [K in keyof T]-?: Strict<Exclude<T[K], undefined>> }
    : T;

/** Inputs accept `api-key`; the schema spells it `api_key`. */
type NormalizeInput<T> = T extends "api-key"
  ? "api_key"
  : T extends readonly (infer U)[]
    ? NormalizeInput<U>[]
    : T extends object
      ? string extends keyof T
        ? T
        : { [K in keyof T]: NormalizeInput<T[K]> }
      : T;

type Equals<A, B> =
  (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];

/** An answer type is exactly the schema's (fields, their types and nullability). */
type IsOutput<Sdk, Schema> = Equals<Strict<Sdk>, Strict<Camelize<Schema>>>;

/** An input type has the schema's fields, requires what it requires, and sends what it accepts. */
type IsInput<Sdk, Schema> = [
  Equals<keyof Sdk, keyof Camelize<Schema>>,
  Equals<RequiredKeys<Sdk>, RequiredKeys<Camelize<Schema>>>,
  NormalizeInput<Sdk> extends Camelize<Schema> ? true : false,
] extends [true, true, true]
  ? true
  : false;

// The block below is what keeps the SDK and the server's contract from drifting apart.
type Checks = [
  Assert<IsOutput<Secret, Schemas["SecretSummary"]>>,
  Assert<IsOutput<AgentCredential, Schemas["CredentialSummary"]>>,
  Assert<IsOutput<ApiKey, Schemas["ApiKeySummary"]>>,
  Assert<IsOutput<ApiKeyWithValue, Schemas["ApiKeyWithValue"]>>,
  Assert<IsOutput<ApiKeyList, Schemas["ListApiKeysResponse"]>>,
  Assert<IsOutput<AuditEvent, Schemas["AuditEvent"]>>,
  Assert<IsOutput<Preset, Schemas["Preset"]>>,
  Assert<IsOutput<PresetVersion, Schemas["PresetVersion"]>>,
  Assert<IsOutput<PresetList, Schemas["PresetList"]>>,
  Assert<IsOutput<AgentPermission, Schemas["AgentPermission"]>>,
  Assert<IsOutput<PresetInstallEvent, Schemas["PresetInstallEvent"]>>,
  Assert<IsOutput<PresetRemoval, Schemas["PresetRemoval"]>>,
  Assert<
    Equals<
      keyof Camelize<NonNullable<operations["remove_preset"]["parameters"]["query"]>>,
      keyof RemovePresetOptions
    >
  >,
  Assert<IsOutput<Sandbox, Schemas["Sandbox"]>>,
  Assert<IsOutput<SandboxSnapshot, Schemas["SandboxSnapshot"]>>,
  Assert<IsOutput<SnapshotList, Schemas["SnapshotList"]>>,
  Assert<IsOutput<ScrubPreview, Schemas["ScrubPreview"]>>,
  Assert<IsInput<CreateSandboxSnapshotInput, Schemas["CreateSnapshotRequest"]>>,
  Assert<
    Equals<
      keyof Camelize<NonNullable<operations["list_snapshots"]["parameters"]["query"]>>,
      keyof ListSandboxSnapshotsOptions
    >
  >,
  Assert<IsOutput<ResolvedAgentCredential, Schemas["ResolvedAgentCredential"]>>,
  Assert<IsOutput<ResolutionPreview, Schemas["ResolutionPreview"]>>,
  Assert<IsOutput<RepoConfigApplied, Schemas["RepoConfigApplied"]>>,
  Assert<IsOutput<SetupOutcome, Schemas["SetupOutcome"]>>,
  Assert<IsOutput<WorkspaceUpload, Schemas["WorkspaceUpload"]>>,
  Assert<Equals<SandboxSize, Schemas["SandboxSize"]>>,
  Assert<
    Equals<
      keyof Camelize<operations["create_workspace_upload"]["parameters"]["query"]>,
      Exclude<keyof UploadWorkspaceOptions, "signal" | "timeoutMs">
    >
  >,
  Assert<
    Equals<
      keyof Camelize<NonNullable<operations["get_setup_log"]["parameters"]["query"]>>,
      Exclude<keyof SetupLogOptions, "signal">
    >
  >,
  Assert<IsOutput<ExecFrame, Schemas["ExecFrame"]>>,
  Assert<IsOutput<Me, Schemas["Me"]>>,
  Assert<IsOutput<SshAccess, Schemas["SshAccess"]>>,
  Assert<IsOutput<SshPublicKey, Schemas["SshPublicKey"]>>,
  Assert<IsInput<CreateSshPublicKeyInput, Schemas["SshPublicKeyRequest"]>>,
  Assert<IsInput<CreateSecretInput, Schemas["CreateSecretRequest"]>>,
  Assert<IsInput<UpdateSecretInput, Schemas["UpdateSecretRequest"]>>,
  Assert<IsInput<CreateProviderSecretInput, Schemas["CreateCredentialRequest"]>>,
  Assert<IsInput<UpdateProviderSecretInput, Schemas["UpdateCredentialRequest"]>>,
  Assert<IsInput<CreateApiKeyInput, Schemas["CreateApiKeyRequest"]>>,
  Assert<IsInput<AgentCredentialRef, Schemas["AgentCredentialRef"]>>,
  Assert<IsInput<CreateSandboxInput, Schemas["CreateSandboxRequest"]>>,
  Assert<IsInput<Omit<ExecOptions, "signal"> & { command: string[] }, Schemas["ExecRequest"]>>,
  Assert<IsOutput<AgentSendResponse, Schemas["AgentSendResponse"]>>,
  Assert<IsOutput<AgentSendJob, Schemas["AgentSendJobResponse"]>>,
  Assert<IsOutput<AgentTurn, Schemas["AgentTurn"]>>,
  Assert<IsOutput<AgentSession, Schemas["AgentSession"]>>,
  Assert<IsOutput<AgentSessionsList, Schemas["AgentSessionsList"]>>,
  Assert<IsInput<AgentSendInput, Schemas["AgentSendRequest"]>>,
  Assert<IsInput<CreateSessionInput, Schemas["CreateSessionRequest"]>>,
  Assert<IsInput<UpdateSessionInput, Schemas["UpdateSessionRequest"]>>,
  Assert<
    Equals<
      keyof Camelize<NonNullable<operations["latest_agent_session"]["parameters"]["query"]>>,
      keyof LatestSessionOptions
    >
  >,
  Assert<Equals<ListSessionsOptions["status"], Schemas["AgentSessionStatus"] | undefined>>,
  Assert<Equals<keyof ErrorDetail, keyof Camelize<Schemas["ErrorDetail"]>>>,
  Assert<Schemas["ErrorDetail"]["code"] extends ErrorDetail["code"] ? true : false>,
];
