// Where the data-plane CA (certificate and key, PEM) is kept: a Kubernetes Secret (the controller's
// replicas share it) or a directory (tests, standalone). `create` is create-if-absent: when another
// replica stored one first, that one is returned, so racing replicas end up with the same CA.
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { GatehouseError } from "../errors.ts";
import { KubeApiError, type KubeApi } from "../provider/kubernetes/client.ts";

export interface StoredCA {
  certPem: string;
  keyPem: string;
}

export interface CAStore {
  /** The stored CA, or undefined when there is none yet. */
  load(): Promise<StoredCA | undefined>;
  /** Stores `ca` unless one is stored already; returns the one stored (ours or the other's). */
  create(ca: StoredCA): Promise<StoredCA>;
  /** Where it is, for messages (never its content). */
  describe(): string;
}

export class CAStoreError extends GatehouseError {}

export const CA_CERT_KEY = "ca.crt";
export const CA_KEY_KEY = "ca.key";

interface SecretJSON {
  metadata?: { name?: string };
  type?: string;
  data?: Record<string, string>;
}

/** A Secret (type Opaque) with `ca.crt` and `ca.key`. */
export class KubernetesSecretCAStore implements CAStore {
  readonly #api: KubeApi;
  readonly #namespace: string;
  readonly #name: string;

  constructor(api: KubeApi, namespace: string, name: string) {
    this.#api = api;
    this.#namespace = namespace;
    this.#name = name;
  }

  describe(): string {
    return `Secret ${this.#namespace}/${this.#name}`;
  }

  async load(): Promise<StoredCA | undefined> {
    let secret: SecretJSON;
    try {
      secret = await this.#api.request<SecretJSON>(
        "GET",
        `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/secrets/${encodeURIComponent(this.#name)}`,
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.notFound) return undefined;
      throw new CAStoreError(`${this.describe()}: cannot read it`, { cause: err });
    }
    const cert = secret.data?.[CA_CERT_KEY];
    const key = secret.data?.[CA_KEY_KEY];
    if (cert === undefined || key === undefined)
      throw new CAStoreError(
        `${this.describe()} exists without ${CA_CERT_KEY} and ${CA_KEY_KEY}; delete it to let the controller create the CA`,
      );
    return {
      certPem: Buffer.from(cert, "base64").toString("utf8"),
      keyPem: Buffer.from(key, "base64").toString("utf8"),
    };
  }

  async create(ca: StoredCA): Promise<StoredCA> {
    try {
      await this.#api.request("POST", `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/secrets`, {
        apiVersion: "v1",
        kind: "Secret",
        type: "Opaque",
        metadata: {
          name: this.#name,
          namespace: this.#namespace,
          labels: {
            "app.kubernetes.io/managed-by": "gatehouse",
            "app.kubernetes.io/component": "dataplane-ca",
          },
        },
        data: {
          [CA_CERT_KEY]: Buffer.from(ca.certPem).toString("base64"),
          [CA_KEY_KEY]: Buffer.from(ca.keyPem).toString("base64"),
        },
      });
      return ca;
    } catch (err) {
      if (!(err instanceof KubeApiError && err.conflict))
        throw new CAStoreError(`${this.describe()}: cannot create it`, { cause: err });
    }
    // Another replica created it first: use theirs.
    const theirs = await this.load();
    if (theirs === undefined) throw new CAStoreError(`${this.describe()}: created by another, then gone`);
    return theirs;
  }
}

/** `ca.crt` and `ca.key` (mode 0600) in a directory. */
export class FileCAStore implements CAStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  describe(): string {
    return `directory ${this.#dir}`;
  }

  async load(): Promise<StoredCA | undefined> {
    try {
      return {
        certPem: await readFile(join(this.#dir, CA_CERT_KEY), "utf8"),
        keyPem: await readFile(join(this.#dir, CA_KEY_KEY), "utf8"),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new CAStoreError(`${this.describe()}: cannot read the CA`, { cause: err });
    }
  }

  async create(ca: StoredCA): Promise<StoredCA> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    // Both files are written under temporary names, then the key, then the certificate, are linked
    // into place (link fails when the name exists): the first writer wins, the other reads its CA.
    const tmp = `.tmp-${randomBytes(8).toString("hex")}`;
    const [certTmp, keyTmp] = [
      join(this.#dir, `${CA_CERT_KEY}${tmp}`),
      join(this.#dir, `${CA_KEY_KEY}${tmp}`),
    ];
    try {
      await writeFile(keyTmp, ca.keyPem, { mode: 0o600 });
      await writeFile(certTmp, ca.certPem, { mode: 0o644 });
      await link(keyTmp, join(this.#dir, CA_KEY_KEY));
      await link(certTmp, join(this.#dir, CA_CERT_KEY));
      return ca;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST")
        throw new CAStoreError(`${this.describe()}: cannot write the CA`, { cause: err });
      // The other writer links its certificate right after its key: give it a moment.
      for (let attempt = 0; attempt < 50; attempt++) {
        const theirs = await this.load();
        if (theirs !== undefined) return theirs;
        await sleep(20);
      }
      throw new CAStoreError(`${this.describe()}: ${CA_KEY_KEY} without ${CA_CERT_KEY}`, { cause: err });
    } finally {
      await rm(keyTmp, { force: true });
      await rm(certTmp, { force: true });
    }
  }
}
