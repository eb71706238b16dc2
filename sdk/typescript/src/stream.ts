/**
 * Streamed agent sends: the server-sent events of `POST .../agent-send/stream` and
 * `GET .../agent-send-jobs/{job_id}/events`, read as they arrive and handed out as typed events.
 *
 * The wire is `text/event-stream`: each event's `event:` line names it (`status`, `delta`,
 * `done`, `error`) and its `data:` is the JSON of the server's `AgentStreamEvent`, tagged by
 * `event`. `SseParser` reads that format as the HTML standard defines it, whatever the chunks
 * the network cuts it into: LF, CRLF or CR line ends (a CRLF may be split between chunks),
 * comment lines (the server's keep-alives), events whose data spans several `data:` lines, and
 * a UTF-8 character split between chunks (the caller's `TextDecoder` keeps it).
 *
 * An `error` event is not yielded: it ends the iteration by throwing an `AmikaApiError` built
 * from its body exactly as the synchronous `agentSend` builds one from its error answer (same
 * `code`, `message`, `details`, `traceId`, and the `status` that form answers with), so one
 * `catch` handles both.
 */
import type { components } from "./generated/openapi.js";
import { AmikaApiError, AmikaError, AmikaNetworkError } from "./errors.js";
import type { AgentJobState, AgentKind, AgentSendResponse, Camelize, ErrorDetail } from "./types.js";
import { fromWire } from "./wire.js";

type Schemas = components["schemas"];

/** What a `delta` is: `text` (part of the reply), `thinking` (the agent's reasoning, when it
 * shows it), `tool_call` (a tool it started: `tool` names it, `text` sums up its input) or
 * `tool_result` (what the tool gave back, at most 4 KiB of it). */
export type AgentDeltaKind = Schemas["AgentDeltaKind"];

/** Where the send's job is: one event per state, `pending` then `running` (a late follower of
 * an ended send gets its final state). Always the first event. */
export interface AgentStreamStatus {
  event: "status";
  jobId: string;
  /** amika's session id: pass it as `sessionId` to continue the conversation. */
  sessionId: string;
  agent: AgentKind;
  isNewSession: boolean;
  state: AgentJobState;
}

/** A piece of the agent's progress, redacted (`[REDACTED:<name>]` for every injected value). */
export interface AgentStreamDelta {
  event: "delta";
  kind: AgentDeltaKind;
  text: string;
  /** The tool's name, for `tool_call` and `tool_result`. */
  tool?: string | null;
}

/** The last event: the whole answer, exactly as `agentSend` returns it. The agent may still
 * have failed (`isError`, `errorCode`: crashed, deadline, cancelled). */
export type AgentStreamDone = { event: "done" } & AgentSendResponse;

/** One event of a streamed send, in order: `status` (one per state), any number of `delta`s,
 * then one `done`. (The wire's fourth kind, `error`, is thrown as an `AmikaApiError`.) */
export type AgentStreamEvent = AgentStreamStatus | AgentStreamDelta | AgentStreamDone;

/** Options of `agentSendStream` and `followAgentSendJob`. */
export interface AgentStreamOptions {
  /** Aborting it closes the connection (the iteration throws the abort's `AbortError`); for
   * `agentSendStream` that stops the agent, as leaving the loop early does. */
  signal?: AbortSignal;
}

// ------------------------------------------------------------------ the event-stream format

/** One event of a `text/event-stream` body: its type (`message` when it gave none), its data
 * (the `data:` lines joined by `\n`) and its `id:`, if any. */
export interface SseEvent {
  type: string;
  data: string;
  id?: string;
}

/**
 * An incremental `text/event-stream` parser (the HTML standard's "event stream interpretation"):
 * feed it text as it arrives, take the events that are complete. An event is complete at the
 * blank line after it; an event with no `data:` line is dropped, as are comments (`: ...`),
 * `retry:` and fields it does not know. Whatever is left at the end of the body (an event
 * without its closing blank line) is dropped too, as the standard says.
 */
export class SseParser {
  #buffer = "";
  #started = false;
  #type = "";
  #data: string[] = [];
  #id: string | undefined;

  /** Parse `text` (the next decoded piece of the body) and return the events it completed. */
  push(text: string): SseEvent[] {
    if (!this.#started && text !== "") {
      this.#started = true;
      // A byte order mark may open the stream.
      if (text.startsWith("\uFEFF")) text = text.slice(1);
    }
    this.#buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const cr = this.#buffer.indexOf("\r", start);
      const lf = this.#buffer.indexOf("\n", start);
      if (cr < 0 && lf < 0) break;
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      // A CR at the very end may be the first half of a CRLF split across chunks: wait.
      if (end === cr && end === this.#buffer.length - 1) break;
      const next = end === cr && this.#buffer[end + 1] === "\n" ? end + 2 : end + 1;
      const event = this.#line(this.#buffer.slice(start, end));
      if (event) events.push(event);
      start = next;
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  /** The body has ended: a lone CR still waiting for its LF ends its line. */
  end(): SseEvent[] {
    if (!this.#buffer.endsWith("\r")) return [];
    const line = this.#buffer.slice(0, -1);
    this.#buffer = "";
    const event = this.#line(line);
    return event ? [event] : [];
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#type = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      default:
        // `retry` and unknown fields: nothing to do for a reader that does not reconnect.
        break;
    }
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    const type = this.#type || "message";
    const data = this.#data;
    this.#type = "";
    this.#data = [];
    if (data.length === 0) return undefined;
    const event: SseEvent = { type, data: data.join("\n") };
    if (this.#id !== undefined) event.id = this.#id;
    return event;
  }
}

// ------------------------------------------------------------------ agent events

/** The status the synchronous form answers with for an error code that a stream can end with. */
const STATUS_OF_CODE: Record<string, number> = {
  agent_auth_failed: 422,
  not_found: 404,
  unauthorized: 401,
  forbidden: 403,
  provider_unavailable: 503,
};

/** The `AmikaApiError` of an `error` event's body (the wire's `ErrorBody`). */
export function streamError(body: unknown, request: string, headerTraceId: string): AmikaApiError {
  const env = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const code = str(env.code) ?? str(env.error_code) ?? "internal";
  return new AmikaApiError({
    status: STATUS_OF_CODE[code] ?? 500,
    code,
    message: str(env.message) ?? `the agent stream of ${request} ended with an error (${code})`,
    traceId: str(env.trace_id) ?? headerTraceId,
    details: Array.isArray(env.details) ? (env.details as ErrorDetail[]) : [],
    request,
  });
}

function describe(e: unknown): string {
  const cause = (e as { cause?: unknown })?.cause ?? e;
  const c = cause as { code?: unknown; message?: unknown };
  if (typeof c?.code === "string") return c.code + (typeof c.message === "string" ? `: ${c.message}` : "");
  if (typeof c?.message === "string") return c.message;
  return String(cause);
}

/**
 * The events of a streamed send's answer, as they arrive: `status`, `delta`s, then `done`
 * (after which the iteration ends), or an `AmikaApiError` thrown for an `error` event. Events of
 * a type this SDK does not know (a newer server's) are skipped. A body that ends before `done`
 * or `error` is an `AmikaNetworkError`. Leaving early (`break`, `return`, a throw in the loop)
 * cancels the body, which closes the connection.
 *
 * `request` is `METHOD path`, for errors; used by `AmikaClient.agentSendStream` and
 * `followAgentSendJob`.
 */
export async function* readAgentEvents(
  resp: Response,
  request: string,
): AsyncGenerator<AgentStreamEvent, void, undefined> {
  const traceId = resp.headers.get("x-trace-id") ?? "";
  const type = resp.headers.get("content-type") ?? "";
  if (!type.startsWith("text/event-stream") || !resp.body) {
    await resp.body?.cancel().catch(() => {});
    throw new AmikaError(
      `${request} answered ${type || "no content type"} instead of text/event-stream: is a proxy in between?`,
    );
  }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if ((e as { name?: string })?.name === "AbortError") throw e;
        throw new AmikaNetworkError(`the agent stream of ${request} broke off (${describe(e)})`, request, e);
      }
      const events = chunk.done
        ? [...parser.push(decoder.decode()), ...parser.end()]
        : parser.push(decoder.decode(chunk.value, { stream: true }));
      for (const sse of events) {
        const event = parseEvent(sse, request, traceId);
        if (event === undefined) continue;
        yield event;
        if (event.event === "done") return;
      }
      if (chunk.done) break;
    }
    throw new AmikaNetworkError(
      `the agent stream of ${request} ended before the agent's answer (the server went away?)`,
      request,
    );
  } finally {
    // Closes the connection when the caller leaves early; a no-op once the body has ended.
    await reader.cancel().catch(() => {});
  }
}

/** A typed event, `undefined` for a type this SDK does not know; throws for `error`. */
function parseEvent(sse: SseEvent, request: string, traceId: string): AgentStreamEvent | undefined {
  let data: unknown;
  try {
    data = JSON.parse(sse.data);
  } catch {
    throw new AmikaError(`bad ${sse.type} event in the agent stream of ${request}: ${sse.data.slice(0, 200)}`);
  }
  const tag = (data as { event?: unknown } | null)?.event ?? sse.type;
  switch (tag) {
    case "error":
      throw streamError(data, request, traceId);
    case "status":
    case "delta":
    case "done":
      return fromWire<AgentStreamEvent>(data);
    default:
      return undefined;
  }
}

// ================================================================== Checks
// Compile-time only: each event type is exactly the generated schema's (see `types.ts`).

type Equals<A, B> =
  (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
type Strict<T> = T extends readonly (infer U)[]
  ? Strict<U>[]
  : T extends object
    ? { [K in keyof T]-?: Strict<Exclude<T[K], undefined>> }
    : T;
type Wire<E extends Schemas["AgentStreamEvent"]["event"]> = Extract<
  Schemas["AgentStreamEvent"],
  { event: E }
>;
type IsEvent<Sdk, E extends Schemas["AgentStreamEvent"]["event"]> = Equals<
  Strict<Sdk>,
  Strict<Camelize<Wire<E>>>
>;

type StreamChecks = [
  Assert<IsEvent<AgentStreamStatus, "status">>,
  Assert<IsEvent<AgentStreamDelta, "delta">>,
  Assert<IsEvent<AgentStreamDone, "done">>,
  Assert<Equals<Schemas["AgentStreamEvent"]["event"], AgentStreamEvent["event"] | "error">>,
];
