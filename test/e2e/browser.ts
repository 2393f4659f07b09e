// A headless Chromium driven over the Chrome DevTools Protocol on --remote-debugging-pipe (fd 3:
// commands to the browser, fd 4: its answers and events; each message is JSON ended by a NUL
// byte). Just what the dashboard test needs: open a page, evaluate an expression, take a
// screenshot. Chromium is Debian's `chromium` package (scripts/install.sh installs it).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";

export const CHROMIUM = process.env["GATEHOUSE_CHROMIUM"] ?? "/usr/bin/chromium";

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

export class Browser {
  readonly #child: ChildProcess;
  readonly #in: Writable;
  readonly #dir: string;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #buffer = "";
  #exited: Error | undefined;
  #session = "";

  private constructor(child: ChildProcess, dir: string) {
    this.#child = child;
    this.#dir = dir;
    this.#in = child.stdio[3] as Writable;
    const out = child.stdio[4] as Readable;
    out.setEncoding("utf8");
    out.on("data", (chunk: string) => {
      this.#buffer += chunk;
      for (let end = this.#buffer.indexOf("\0"); end >= 0; end = this.#buffer.indexOf("\0")) {
        const message = JSON.parse(this.#buffer.slice(0, end)) as {
          id?: number;
          result?: Record<string, unknown>;
          error?: { message: string };
        };
        this.#buffer = this.#buffer.slice(end + 1);
        const waiter = message.id === undefined ? undefined : this.#pending.get(message.id);
        if (waiter === undefined) continue;
        this.#pending.delete(message.id ?? 0);
        if (message.error !== undefined) waiter.reject(new Error(`CDP: ${message.error.message}`));
        else waiter.resolve(message.result ?? {});
      }
    });
    child.on("exit", (code, signal) => {
      this.#exited = new Error(`chromium exited (${code ?? signal})`);
      for (const w of this.#pending.values()) w.reject(this.#exited);
      this.#pending.clear();
    });
  }

  /** Starts Chromium headless with a blank page, attached to it. */
  static async launch(size = { width: 1280, height: 900 }): Promise<Browser> {
    const dir = await mkdtemp(join(tmpdir(), "gh-chromium-"));
    const child = spawn(
      CHROMIUM,
      [
        "--headless=new",
        "--remote-debugging-pipe",
        `--user-data-dir=${dir}`,
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-proxy-server",
        // Running as root (CI containers): Chromium refuses to start with its sandbox.
        ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
        "about:blank",
      ],
      { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
    );
    child.stdio[2]?.resume();
    const browser = new Browser(child, dir);
    const { targetId } = (await browser.send("Target.createTarget", { url: "about:blank" })) as {
      targetId: string;
    };
    const { sessionId } = (await browser.send("Target.attachToTarget", { targetId, flatten: true })) as {
      sessionId: string;
    };
    browser.#session = sessionId;
    await browser.send("Page.enable", {}, sessionId);
    await browser.send(
      "Emulation.setDeviceMetricsOverride",
      { ...size, deviceScaleFactor: 1, mobile: false },
      sessionId,
    );
    return browser;
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    if (this.#exited !== undefined) return Promise.reject(this.#exited);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#in.write(
        `${JSON.stringify({ id, method, params, ...(sessionId !== undefined ? { sessionId } : {}) })}\0`,
      );
    });
  }

  /** Navigates the page (resolves once the navigation is committed; poll with `evaluate`). */
  async open(url: string): Promise<void> {
    const r = (await this.send("Page.navigate", { url }, this.#session)) as { errorText?: string };
    if (r.errorText !== undefined) throw new Error(`navigate ${url}: ${r.errorText}`);
  }

  /** The value of a JavaScript expression in the page (awaited when a promise). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send(
      "Runtime.evaluate",
      { expression, returnByValue: true, awaitPromise: true },
      this.#session,
    )) as { result: { value?: T }; exceptionDetails?: { text: string } };
    if (r.exceptionDetails !== undefined) throw new Error(`evaluate: ${r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Waits until `expression` is truthy in the page; returns its value. */
  async waitFor<T>(what: string, expression: string, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await this.evaluate<T>(expression).catch(() => undefined);
      if (value !== undefined && value !== null && value !== false && value !== "") return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${expression})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A PNG of the whole page. */
  async screenshot(): Promise<Buffer> {
    const { data } = (await this.send(
      "Page.captureScreenshot",
      { format: "png", captureBeyondViewport: true },
      this.#session,
    )) as { data: string };
    return Buffer.from(data, "base64");
  }

  async close(): Promise<void> {
    if (this.#exited === undefined) {
      const exited = new Promise((r) => this.#child.once("exit", r));
      const wait = (ms: number) => Promise.race([exited, new Promise((r) => setTimeout(r, ms))]);
      // Browser.close lets Chromium stop its helper processes and flush its profile; a signal to the
      // main process alone leaves helpers writing into the profile directory for a moment.
      await Promise.race([this.send("Browser.close").catch(() => undefined), wait(5000)]);
      await wait(5000);
      if (this.#exited === undefined) {
        this.#child.kill("SIGTERM");
        await wait(5000);
      }
      if (this.#exited === undefined) this.#child.kill("SIGKILL");
    }
    // A helper process may still be finishing a write: retry instead of failing on ENOTEMPTY.
    await rm(this.#dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}
