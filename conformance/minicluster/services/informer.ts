// A cache of one resource collection (all namespaces): list, then watch from the list's
// resourceVersion; relist after an expired watch or an error. Calls `onChange` after every change.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, KubeError, type Kube } from "../kube.ts";

interface Listed {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

export class Informer<T extends Listed> {
  readonly #kube: Kube;
  readonly #path: string;
  readonly #onChange: () => void;
  readonly #log: (line: string) => void;
  readonly #items = new Map<string, T>();
  #synced = false;

  constructor(kube: Kube, path: string, onChange: () => void, log: (line: string) => void) {
    this.#kube = kube;
    this.#path = path;
    this.#onChange = onChange;
    this.#log = log;
  }

  /** True once the first list has arrived. */
  get synced(): boolean {
    return this.#synced;
  }

  items(): T[] {
    return [...this.#items.values()];
  }

  #key(object: T): string {
    return `${object.metadata.namespace ?? ""}/${object.metadata.name}`;
  }

  async #list(): Promise<string> {
    const fresh = new Map<string, T>();
    let resourceVersion = "";
    let next: string | undefined;
    do {
      const page = await this.#kube.request<{
        items: T[];
        metadata: { resourceVersion: string; continue?: string };
      }>("GET", this.#path, undefined, { query: { limit: 500, continue: next } });
      for (const item of page.items) fresh.set(this.#key(item), item);
      resourceVersion = page.metadata.resourceVersion;
      next =
        page.metadata.continue !== undefined && page.metadata.continue !== ""
          ? page.metadata.continue
          : undefined;
    } while (next !== undefined);
    this.#items.clear();
    for (const [key, item] of fresh) this.#items.set(key, item);
    this.#synced = true;
    this.#onChange();
    return resourceVersion;
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        resourceVersion ??= await this.#list();
        await this.#kube.watch<T>(
          this.#path,
          { resourceVersion, timeoutSeconds: 300 },
          (event) => {
            const rv = event.object.metadata.resourceVersion;
            if (rv !== undefined) resourceVersion = rv;
            if (event.type === "BOOKMARK") return;
            if (event.type === "DELETED") this.#items.delete(this.#key(event.object));
            else this.#items.set(this.#key(event.object), event.object);
            this.#onChange();
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof KubeError && error.status === 410))
          this.#log(`watch ${this.#path}: ${describe(error)}`);
        resourceVersion = undefined;
        await sleep(500);
      }
    }
  }
}
