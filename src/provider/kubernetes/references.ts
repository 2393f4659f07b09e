// Secrets and ConfigMaps: only the ones a Gateway, ListenerSet or BackendTLSPolicy references are
// read and kept in full. The provider watches Secrets and ConfigMaps metadata-only (name,
// namespace, resourceVersion: a PartialObjectMetadata watch), so it knows which exist and when one
// changes without holding every key and certificate of the cluster in memory; the referenced ones
// are fetched with a GET when first referenced and whenever their resourceVersion moves, and
// forgotten when no longer referenced.
//
// References are collected generously (a ListenerSet's references in its own namespace and in its
// parent Gateway's), and regardless of ReferenceGrants: the translator still decides what may be
// used; fetching one object too many costs a GET, missing one would make a listener invalid.
import { describeError, type KubeApi } from "./client.ts";
import { resourcePath } from "./resources.ts";

/** `Secret ns/name` or `ConfigMap ns/name`. */
export type ReferenceKey = string;

interface Ref {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
}

interface Obj {
  kind?: string;
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
  spec?: unknown;
}

type Out = Set<ReferenceKey>;

function add(out: Out, ref: Ref | undefined, defaultKind: string, namespaces: readonly string[]): void {
  if (ref?.name === undefined || (ref.group ?? "") !== "") return;
  const kind = ref.kind ?? defaultKind;
  if (kind !== "Secret" && kind !== "ConfigMap") return;
  for (const ns of ref.namespace !== undefined ? [ref.namespace] : namespaces)
    out.add(`${kind} ${ns}/${ref.name}`);
}

interface ListenerLike {
  tls?: { certificateRefs?: Ref[] };
}

interface GatewayTLS {
  backend?: { clientCertificateRef?: Ref };
  frontend?: {
    default?: { validation?: { caCertificateRefs?: Ref[] } };
    perPort?: Array<{ tls?: { validation?: { caCertificateRefs?: Ref[] } } }>;
  };
}

/** The Secrets and ConfigMaps that these objects reference (any kind may be passed; others are ignored). */
export function referencedObjects(objects: Iterable<Obj>): Set<ReferenceKey> {
  const out: Out = new Set();
  for (const o of objects) {
    const ns = o.metadata?.namespace ?? "default";
    if (o.kind === "Gateway") {
      const spec = o.spec as { listeners?: ListenerLike[]; tls?: GatewayTLS } | undefined;
      for (const l of spec?.listeners ?? [])
        for (const r of l.tls?.certificateRefs ?? []) add(out, r, "Secret", [ns]);
      add(out, spec?.tls?.backend?.clientCertificateRef, "Secret", [ns]);
      const frontend = spec?.tls?.frontend;
      for (const r of frontend?.default?.validation?.caCertificateRefs ?? []) add(out, r, "ConfigMap", [ns]);
      for (const p of frontend?.perPort ?? [])
        for (const r of p.tls?.validation?.caCertificateRefs ?? []) add(out, r, "ConfigMap", [ns]);
    } else if (o.kind === "ListenerSet") {
      const spec = o.spec as { parentRef?: Ref; listeners?: ListenerLike[] } | undefined;
      const namespaces = [
        ns,
        ...(spec?.parentRef?.namespace !== undefined ? [spec.parentRef.namespace] : []),
      ];
      for (const l of spec?.listeners ?? [])
        for (const r of l.tls?.certificateRefs ?? []) add(out, r, "Secret", namespaces);
    } else if (o.kind === "BackendTLSPolicy") {
      const spec = o.spec as { validation?: { caCertificateRefs?: Ref[] } } | undefined;
      for (const r of spec?.validation?.caCertificateRefs ?? []) add(out, r, "ConfigMap", [ns]);
    }
  }
  return out;
}

/** What the metadata watch says exists: key → resourceVersion. */
export type Existing = ReadonlyMap<ReferenceKey, string>;

/** The full referenced objects, fetched on demand. */
export class ReferencedObjects {
  readonly #api: KubeApi;
  readonly #timeoutMs: number;
  readonly #objects = new Map<ReferenceKey, { resourceVersion: string; object: Obj }>();

  constructor(api: KubeApi, options: { timeoutMs?: number } = {}) {
    this.#api = api;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Keys cached in full now (tests, memory checks). */
  get cached(): ReferenceKey[] {
    return [...this.#objects.keys()].sort();
  }

  /** Referenced keys that exist and are not cached at their current resourceVersion. */
  stale(referenced: ReadonlySet<ReferenceKey>, existing: Existing): ReferenceKey[] {
    const out: ReferenceKey[] = [];
    for (const key of referenced) {
      const rv = existing.get(key);
      if (rv !== undefined && this.#objects.get(key)?.resourceVersion !== rv) out.push(key);
    }
    return out;
  }

  /** Fetches `keys` (one GET each, a few at a time); returns the failures. */
  async fetch(keys: readonly ReferenceKey[]): Promise<string[]> {
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let key = keys[next++]; key !== undefined; key = keys[next++]) {
        const [kind = "", rest = ""] = key.split(" ");
        const [namespace, name] = rest.split("/");
        const plural = kind === "Secret" ? "secrets" : "configmaps";
        try {
          const object = await this.#api.request<Obj & { metadata?: { managedFields?: unknown } }>(
            "GET",
            resourcePath({ group: "", version: "v1", plural }, { namespace, name }),
            undefined,
            { timeoutMs: this.#timeoutMs },
          );
          if (object.metadata !== undefined) delete object.metadata.managedFields;
          this.#objects.set(key, {
            resourceVersion: object.metadata?.resourceVersion ?? "",
            object: { ...object, apiVersion: "v1", kind } as Obj,
          });
        } catch (error) {
          failures.push(`${key}: ${describeError(error)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, keys.length) }, worker));
    return failures;
  }

  /**
   * The objects to put in the snapshot: referenced, existing, cached. Everything else is forgotten
   * (a Secret no longer referenced leaves memory at the next snapshot).
   */
  objects(referenced: ReadonlySet<ReferenceKey>, existing: Existing): Obj[] {
    const out: Obj[] = [];
    for (const key of [...this.#objects.keys()]) {
      const cached = this.#objects.get(key);
      if (cached === undefined) continue;
      if (!referenced.has(key) || !existing.has(key)) {
        this.#objects.delete(key);
        continue;
      }
      out.push(cached.object);
    }
    return out;
  }
}
