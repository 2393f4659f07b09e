// A client for the HAProxy runtime API ("stats socket ... level admin") and for the master CLI
// (`haproxy -W -S <path>`), both over UNIX sockets.
//
// One connection per command, in non-interactive mode: we write the command, half-close our side and
// read until HAProxy closes. The response is then exactly the answer to that command, with no framing
// to guess (prompt mode ends each answer with "> ", which a dump can contain too). A UNIX connect costs
// well under a millisecond, and bulk changes go through one payload command anyway.
//
// What HAProxy 2.6's CLI parser does with a line, and how we keep input from injecting commands:
// - a newline ends the command: control characters are rejected, never sent;
// - `;` separates commands on one line (`\;` is a literal `;`);
// - words are split on spaces and tabs (`\ ` is a literal space); quotes are NOT special, and extra
//   words are silently ignored (`add map m k a b` stores the value "a");
// - `\x` is `x`, `\\` is a backslash;
// - ANY line ending in `<<` switches to payload mode and swallows the following lines up to an empty
//   one, even when `<<` ends a word such as `value<<` (`\<` neutralises it);
// - a payload ends at the first empty line, so a payload must not contain one;
// - a request (command line + payload) must fit in one buffer (tune.bufsize, 16384 by default): a
//   bigger one gets the connection closed or, worse, left hanging, and 10 such connections (the
//   default `stats maxconn`) lock the socket. Requests are therefore capped client-side.
import { createConnection } from "node:net";
import { GatehouseError } from "../../../errors.ts";

/** One runtime API request: a command line, optionally with a payload (sent as `<line> <<`). */
export type RuntimeRequest = string | { readonly command: string; readonly payload: string };

/** The runtime API as the applier sees it: one command, or several in order. */
export interface RuntimeApi {
  /**
   * Sends one command and returns HAProxy's answer without the empty line that terminates it
   * ("" for commands that succeed silently). Throws RuntimeCommandError when HAProxy does not know
   * the command or refuses it; any other answer (including error messages of known commands) is
   * returned for the caller to interpret (see commands.ts).
   */
  command(request: RuntimeRequest): Promise<string>;
  /** Sends the commands one after the other, stopping at the first that throws. */
  commands(requests: readonly RuntimeRequest[]): Promise<string[]>;
}

/** Base class of runtime API failures. */
export class RuntimeApiError extends GatehouseError {}

/** A request that cannot be sent safely (injection, empty word, too large). Nothing was sent. */
export class RuntimeRequestError extends RuntimeApiError {}

/** The socket could not be reached, or the connection broke. */
export class RuntimeConnectionError extends RuntimeApiError {
  readonly socketPath: string;
  constructor(message: string, socketPath: string, options?: ErrorOptions) {
    super(message, options);
    this.socketPath = socketPath;
  }
}

/** HAProxy did not answer within the timeout. */
export class RuntimeTimeoutError extends RuntimeApiError {
  readonly socketPath: string;
  readonly timeoutMs: number;
  constructor(message: string, socketPath: string, timeoutMs: number) {
    super(message);
    this.socketPath = socketPath;
    this.timeoutMs = timeoutMs;
  }
}

/** HAProxy answered, and the answer says the command failed. */
export class RuntimeCommandError extends RuntimeApiError {
  /** The command line (without payload). */
  readonly command: string;
  /** HAProxy's answer, as received. */
  readonly response: string;
  constructor(command: string, response: string, detail?: string, options?: ErrorOptions) {
    const text = detail ?? (firstLine(response) || "no answer");
    super(`runtime command "${truncate(command, 120)}" failed: ${text}`, options);
    this.command = command;
    this.response = response;
  }
}

/**
 * Largest request we send, in bytes. HAProxy reads one request into one buffer (tune.bufsize, 16384
 * by default, minus some headroom: 16300 bytes passed, 16320 hung in tests on 2.6.12).
 */
export const DEFAULT_MAX_REQUEST_BYTES = 14 * 1024;
export const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f]/;

/**
 * Escapes one word of a command line so HAProxy reads it back as exactly `value`: backslash, space,
 * `;` and `<` are backslash-escaped. Throws RuntimeRequestError for what cannot be expressed: the
 * empty string and control characters (newline, tab, NUL, ...).
 */
export function cliArg(value: string, what = "argument"): string {
  if (value === "") throw new RuntimeRequestError(`${what} must not be empty`);
  if (CONTROL.test(value))
    throw new RuntimeRequestError(`${what} contains a control character: ${quote(value)}`);
  return value.replace(/[\\ ;<]/g, (c) => `\\${c}`);
}

/** Joins a command from literal keywords and values; values go through cliArg. */
export function cliCommand(
  parts: ReadonlyArray<string | { readonly arg: string; readonly what?: string }>,
): string {
  return parts.map((part) => (typeof part === "string" ? part : cliArg(part.arg, part.what))).join(" ");
}

/**
 * Checks a raw command line: one command, no payload marker, nothing that could end the line early.
 * Returns it unchanged.
 */
export function checkCommandLine(line: string): string {
  if (line.trim() === "") throw new RuntimeRequestError("empty command");
  if (CONTROL.test(line))
    throw new RuntimeRequestError(`command contains a control character: ${quote(line)}`);
  if (/(^|[^\\])(\\\\)*;/.test(line)) {
    throw new RuntimeRequestError(
      `command contains an unescaped ";" (one request is one command): ${quote(line)}`,
    );
  }
  if (/<<\s*$/.test(line)) {
    throw new RuntimeRequestError(`command ends with "<<": pass the payload separately: ${quote(line)}`);
  }
  return line;
}

/** Checks a payload: non-empty, no empty line (it would end the payload), no control characters. */
export function checkPayload(payload: string): string {
  const body = payload.endsWith("\n") ? payload.slice(0, -1) : payload;
  if (body === "") throw new RuntimeRequestError("empty payload");
  if (CONTROL_EXCEPT_NEWLINE.test(body))
    throw new RuntimeRequestError("payload contains a control character");
  if (body.startsWith("\n") || body.includes("\n\n")) {
    throw new RuntimeRequestError("payload contains an empty line, which would end it early");
  }
  return body;
}

/** The bytes sent for a request (after `target`, the master CLI routing prefix, if any). */
export function encodeRequest(request: RuntimeRequest, target?: string): string {
  const line = checkCommandLine(typeof request === "string" ? request : request.command);
  const prefix = target === undefined ? "" : `${checkTarget(target)} `;
  if (typeof request === "string") return `${prefix}${line}\n`;
  return `${prefix}${line} <<\n${checkPayload(request.payload)}\n\n`;
}

/** Bytes a payload request costs on the wire, for callers that split bulk payloads. */
export function requestOverhead(command: string, target?: string): number {
  return Buffer.byteLength(`${target === undefined ? "" : `${target} `}${command} <<\n\n\n`);
}

function checkTarget(target: string): string {
  if (!/^@(master|!?\d+)$/.test(target)) {
    throw new RuntimeRequestError(`master CLI target must be @master, @<n> or @!<pid>, not ${quote(target)}`);
  }
  return target;
}

export interface ExchangeOptions {
  timeoutMs?: number;
  maxResponseBytes?: number;
}

/**
 * Low level: connects, writes `data`, half-closes, and returns everything HAProxy sends until it
 * closes the connection. No interpretation (the master's `reload` legitimately answers nothing).
 */
export function exchange(socketPath: string, data: string, options: ExchangeOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const socket = createConnection({ path: socketPath });
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const timer = setTimeout(() => {
      finish(
        new RuntimeTimeoutError(
          `no complete answer from ${socketPath} within ${timeoutMs} ms to "${truncate(firstLine(data), 120)}"`,
          socketPath,
          timeoutMs,
        ),
      );
    }, timeoutMs);
    socket.on("connect", () => {
      socket.end(data);
    });
    socket.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxResponseBytes) {
        finish(
          new RuntimeConnectionError(
            `answer from ${socketPath} exceeds ${maxResponseBytes} bytes`,
            socketPath,
          ),
        );
        return;
      }
      chunks.push(chunk);
    });
    socket.on("end", () => finish(undefined));
    socket.on("close", () => finish(undefined));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      const code = error.code ?? "";
      const hint =
        code === "ENOENT" || code === "ECONNREFUSED"
          ? " (is HAProxy running with this socket?)"
          : code === "EPIPE" || code === "ECONNRESET"
            ? " (HAProxy dropped the connection; a request larger than its buffer does that)"
            : "";
      finish(
        new RuntimeConnectionError(`${socketPath}: ${error.message}${hint}`, socketPath, { cause: error }),
      );
    });
  });
}

export interface UnixSocketRuntimeApiOptions {
  /** Path of the stats socket or of the master CLI socket. */
  socketPath: string;
  /**
   * Master CLI routing prefix (`@1` the current worker, `@!<pid>` a given process, `@master`). Only
   * for the master socket. Note that each routed command reaches the worker on a fresh session, so
   * session settings such as `set severity-output` do not carry over.
   */
  target?: string;
  /** Per-command timeout (default 5 s). */
  timeoutMs?: number;
  /** Largest request sent (default DEFAULT_MAX_REQUEST_BYTES); raise it only with tune.bufsize. */
  maxRequestBytes?: number;
}

/** RuntimeApi over a UNIX socket, one connection per command. */
export class UnixSocketRuntimeApi implements RuntimeApi {
  readonly socketPath: string;
  readonly target: string | undefined;
  readonly timeoutMs: number;
  readonly maxRequestBytes: number;

  constructor(options: UnixSocketRuntimeApiOptions) {
    this.socketPath = options.socketPath;
    this.target = options.target === undefined ? undefined : checkTarget(options.target);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  }

  async command(request: RuntimeRequest): Promise<string> {
    const line = typeof request === "string" ? request : request.command;
    const wire = encodeRequest(request, this.target);
    const bytes = Buffer.byteLength(wire);
    if (bytes > this.maxRequestBytes) {
      throw new RuntimeRequestError(
        `request of ${bytes} bytes exceeds the ${this.maxRequestBytes}-byte limit of the HAProxy CLI buffer: "${truncate(line, 80)}"`,
      );
    }
    const raw = await exchange(this.socketPath, wire, { timeoutMs: this.timeoutMs });
    return interpretResponse(line, raw);
  }

  async commands(requests: readonly RuntimeRequest[]): Promise<string[]> {
    const answers: string[] = [];
    for (const request of requests) answers.push(await this.command(request));
    return answers;
  }
}

/**
 * The current worker through the master CLI (`@1`): unlike the stats socket, whose listener old and
 * new workers share during a reload, it cannot reach an old worker.
 */
export function workerRuntimeApi(
  masterSocket: string,
  options: Omit<UnixSocketRuntimeApiOptions, "socketPath"> = {},
): UnixSocketRuntimeApi {
  return new UnixSocketRuntimeApi({ target: "@1", ...options, socketPath: masterSocket });
}

const REFUSALS = [
  /^Unknown command/,
  /^Permission denied/,
  /^Can't find the target PID/,
  /^\[\d\]: Unknown command/,
];

/**
 * Turns a raw answer into the command's output: drops the terminating empty line, and throws
 * RuntimeCommandError when HAProxy answered nothing (request dropped) or refused the command.
 */
export function interpretResponse(command: string, raw: string): string {
  if (raw === "") {
    throw new RuntimeCommandError(
      command,
      raw,
      "HAProxy closed the connection without answering (request too large, or the process is going away)",
    );
  }
  const body = raw.endsWith("\n\n") ? raw.slice(0, -1) : raw === "\n" ? "" : raw;
  if (REFUSALS.some((pattern) => pattern.test(body))) throw new RuntimeCommandError(command, body);
  return body;
}

function firstLine(text: string): string {
  const newline = text.indexOf("\n");
  return (newline < 0 ? text : text.slice(0, newline)).trim();
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function quote(text: string): string {
  return JSON.stringify(truncate(text, 120));
}
