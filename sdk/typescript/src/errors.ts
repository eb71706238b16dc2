/**
 * Errors the SDK throws. Every one is an `AmikaError`; which subclass tells what went wrong:
 * the server answered with an error (`AmikaApiError`), the server could not be reached
 * (`AmikaNetworkError`), a sandbox did not become ready (`AmikaSandboxFailedError`,
 * `AmikaTimeoutError`), an agent-send job did not finish in time (`AmikaAgentJobTimeoutError`),
 * or an exec stream reported a failure (`AmikaExecError`).
 */
import type { AgentSendJob, ErrorDetail, Sandbox } from "./types.js";

export class AmikaError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server answered with a non-2xx status and (usually) its error envelope. */
export class AmikaApiError extends AmikaError {
  /** HTTP status, e.g. 404. */
  readonly status: number;
  /** Machine-readable code (an `ErrorCode`), e.g. `not_found`, `secret_exists`,
   * `secret_not_found`; `http_<status>` when the answer had no envelope. */
  readonly code: string;
  /** The request's trace id (also in the server's log), `""` if the answer had none. */
  readonly traceId: string;
  /** The request fields the error is about (e.g. `{ field: "secret_env_vars.DB", ... }`);
   * empty when it is about none in particular. */
  readonly details: ErrorDetail[];
  /** `METHOD path` of the request that failed. */
  readonly request: string;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    traceId: string;
    details?: ErrorDetail[];
    request: string;
  }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.traceId = init.traceId;
    this.details = init.details ?? [];
    this.request = init.request;
  }
}

/** The server could not be reached, or the connection broke off (no HTTP answer). */
export class AmikaNetworkError extends AmikaError {
  /** `METHOD url` of the request that failed. */
  readonly request: string;

  constructor(message: string, request: string, cause?: unknown) {
    super(message, { cause });
    this.request = request;
  }
}

/** `waitUntilReady` saw the sandbox in state `failed`. */
export class AmikaSandboxFailedError extends AmikaError {
  /** The sandbox as last seen, with its `errorMessage`. */
  readonly sandbox: Sandbox;

  constructor(sandbox: Sandbox) {
    super(
      `sandbox ${sandbox.name} failed: ${sandbox.errorMessage ?? "no error message recorded"}`,
    );
    this.sandbox = sandbox;
  }
}

/** `waitUntilReady` gave up before the sandbox was `running`. */
export class AmikaTimeoutError extends AmikaError {
  /** The sandbox as last seen. */
  readonly sandbox: Sandbox;
  readonly timeoutMs: number;

  constructor(sandbox: Sandbox, timeoutMs: number) {
    super(
      `sandbox ${sandbox.name} is not running after ${timeoutMs} ms (state ${sandbox.state})`,
    );
    this.sandbox = sandbox;
    this.timeoutMs = timeoutMs;
  }
}

/** An exec stream reported an error frame, or ended without an exit status. */
export class AmikaExecError extends AmikaError {
  /** The exec request's trace id. */
  readonly traceId: string;

  constructor(message: string, traceId: string) {
    super(message);
    this.traceId = traceId;
  }
}

/** `waitForAgentSendJob` gave up before the job was `done` or `failed` (the job goes on). */
export class AmikaAgentJobTimeoutError extends AmikaError {
  /** The job as last seen (`pending` or `running`). */
  readonly job: AgentSendJob;
  readonly timeoutMs: number;

  constructor(sandbox: string, job: AgentSendJob, timeoutMs: number) {
    super(
      `agent-send job ${job.jobId} in sandbox ${sandbox} has not finished after ${timeoutMs} ms (state ${job.state})`,
    );
    this.job = job;
    this.timeoutMs = timeoutMs;
  }
}
