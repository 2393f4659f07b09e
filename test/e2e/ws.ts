// A minimal WebSocket (RFC 6455) codec and client for the end-to-end tests: text, close, ping and
// pong frames; the client sends its own Host header so it can go through name-based routing.
import { randomBytes, createHash } from "node:crypto";
import { connect, type Socket } from "node:net";

export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export interface Frame {
  opcode: number;
  text: string;
}

/** One frame (FIN set); `mask` for frames a client sends. */
export function encodeFrame(opcode: number, text: string, mask: boolean): Buffer {
  const payload = Buffer.from(text, "utf8");
  const length = payload.length;
  const header: number[] = [0x80 | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) header.push(maskBit | length);
  else if (length < 65536) header.push(maskBit | 126, length >> 8, length & 0xff);
  else throw new Error("frame too large for this test codec");
  if (!mask) return Buffer.concat([Buffer.from(header), payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ (key[i % 4] ?? 0)));
  return Buffer.concat([Buffer.from(header), key, masked]);
}

/** Every complete frame at the start of `buffer`, and what is left. */
export function decodeFrames(buffer: Buffer): { messages: Frame[]; rest: Buffer } {
  const messages: Frame[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    const b0 = buffer[offset] ?? 0;
    const b1 = buffer[offset + 1] ?? 0;
    let length = b1 & 0x7f;
    let pos = offset + 2;
    if (length === 126) {
      if (buffer.length < pos + 2) break;
      length = buffer.readUInt16BE(pos);
      pos += 2;
    } else if (length === 127) {
      throw new Error("frame too large for this test codec");
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? buffer.subarray(pos, pos + 4) : undefined;
    if (masked) pos += 4;
    if (buffer.length < pos + length) break;
    let payload = buffer.subarray(pos, pos + length);
    if (key !== undefined) payload = Buffer.from(payload.map((b, i) => b ^ (key[i % 4] ?? 0)));
    messages.push({ opcode: b0 & 0x0f, text: payload.toString("utf8") });
    offset = pos + length;
  }
  return { messages, rest: buffer.subarray(offset) };
}

export interface WebSocketClient {
  /** The 101 response head. */
  readonly response: string;
  send(text: string): void;
  /** The next text message (rejects after `timeoutMs` or when the connection closes). */
  receive(timeoutMs?: number): Promise<string>;
  /** send + receive. */
  roundTrip(text: string, timeoutMs?: number): Promise<string>;
  readonly closed: boolean;
  close(): void;
}

/** Opens a WebSocket to `address:port` with the given Host header and path. */
export function openWebSocket(options: {
  address: string;
  port: number;
  host: string;
  path?: string;
  timeoutMs?: number;
}): Promise<WebSocketClient> {
  const key = randomBytes(16).toString("base64");
  const expected = createHash("sha1")
    .update(key + WS_GUID)
    .digest("base64");
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: options.address, port: options.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("WebSocket handshake timed out"));
    }, options.timeoutMs ?? 5000);
    let head = Buffer.alloc(0);
    const onHandshake = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      clearTimeout(timer);
      socket.off("data", onHandshake);
      const response = head.subarray(0, end).toString("latin1");
      const rest = head.subarray(end + 4);
      if (!/^HTTP\/1\.1 101 /.test(response) || !response.includes(expected)) {
        socket.destroy();
        reject(new Error(`WebSocket handshake failed: ${response.split("\r\n")[0] ?? ""}`));
        return;
      }
      resolve(client(socket, response, rest));
    };
    socket.on("data", onHandshake);
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("connect", () => {
      socket.write(
        `GET ${options.path ?? "/"} HTTP/1.1\r\nHost: ${options.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  });
}

function client(socket: Socket, response: string, initial: Buffer): WebSocketClient {
  let buffered = initial;
  const inbox: string[] = [];
  const waiters: Array<{ resolve: (text: string) => void; reject: (err: Error) => void }> = [];
  let closed = false;
  const pump = (): void => {
    const { messages, rest } = decodeFrames(buffered);
    buffered = rest;
    for (const m of messages) {
      if (m.opcode === 1) inbox.push(m.text);
      if (m.opcode === 8) socket.end();
    }
    while (inbox.length > 0 && waiters.length > 0) waiters.shift()?.resolve(inbox.shift() ?? "");
  };
  const fail = (err: Error): void => {
    closed = true;
    for (const w of waiters.splice(0)) w.reject(err);
  };
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    pump();
  });
  socket.on("close", () => fail(new Error("WebSocket connection closed")));
  socket.on("error", (err) => fail(err));
  pump();
  const receive = (timeoutMs = 5000): Promise<string> => {
    const ready = inbox.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (closed) return Promise.reject(new Error("WebSocket connection closed"));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (text: string) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no WebSocket message within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };
  return {
    response,
    send: (text) => socket.write(encodeFrame(1, text, true)),
    receive,
    roundTrip: (text, timeoutMs) => {
      socket.write(encodeFrame(1, text, true));
      return receive(timeoutMs);
    },
    get closed() {
      return closed;
    },
    close: () => {
      if (!closed) socket.end(encodeFrame(8, "", true));
      socket.destroySoon();
    },
  };
}
