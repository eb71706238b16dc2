/**
 * Following a preset install: `POST /presets/{name}/install` answers 200 at once and then streams
 * newline-delimited `PresetInstallEvent`s (`progress` lines while npm runs, then one `done` with
 * the preset or one `error`). `AmikaClient.installPreset` sends the request; this reads the
 * stream as it arrives.
 */
import { AmikaApiError, AmikaError, AmikaNetworkError } from "./errors.js";
import type { Preset, PresetInstallEvent } from "./types.js";
import { fromWire } from "./wire.js";

/**
 * Read an install answer to its last line: `onProgress` gets each `progress` line as it arrives;
 * resolves with the preset of the `done` line. An `error` line rejects with an `AmikaApiError`
 * (503 `provider_unavailable`, the server's message: npm's last lines, a missing Node.js, ...),
 * as the Rust client and the CLI report it; a stream that breaks off, with an
 * `AmikaNetworkError`.
 */
export async function followPresetInstall(
  resp: Response,
  request: string,
  onProgress?: (event: PresetInstallEvent) => void,
): Promise<Preset> {
  const traceId = resp.headers.get("x-trace-id") ?? "";
  if (!resp.body) throw new AmikaNetworkError(`the answer to ${request} has no body`, request);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  // Each complete line: the install's outcome once it is known, `undefined` to read on.
  const take = (line: string): Preset | undefined => {
    let event: PresetInstallEvent;
    try {
      event = fromWire<PresetInstallEvent>(JSON.parse(line));
    } catch {
      throw new AmikaError(`${request}: not an install event: ${line.slice(0, 200)}`);
    }
    switch (event.event) {
      case "progress":
        onProgress?.(event);
        return undefined;
      case "done":
        if (!event.preset) throw new AmikaError(`${request}: a \`done\` line without its preset`);
        return event.preset;
      case "error":
        throw new AmikaApiError({
          status: 503,
          code: "provider_unavailable",
          message: event.message,
          traceId,
          request,
        });
      default:
        throw new AmikaError(`${request}: unknown install event ${JSON.stringify(event.event)}`);
    }
  };
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if ((e as { name?: string })?.name === "AbortError") throw e;
        throw new AmikaNetworkError(`the install stream of ${request} broke off`, request, e);
      }
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        const preset = line === "" ? undefined : take(line);
        if (preset) return preset;
      }
    }
    buffered += decoder.decode();
    const preset = buffered.trim() === "" ? undefined : take(buffered.trim());
    if (preset) return preset;
    throw new AmikaNetworkError(
      `the install stream of ${request} ended before its last line (the server may have stopped; ` +
        `listPresets shows whether the preset got installed)`,
      request,
    );
  } finally {
    // Stops the download when the caller leaves early; the install goes on on the server.
    await reader.cancel().catch(() => {});
  }
}
