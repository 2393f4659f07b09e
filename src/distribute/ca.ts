// The controller's certificate authority for the config stream of `--infrastructure kubernetes`:
// one ECDSA P-256 CA (10 years) kept in a CAStore, issuing the distribution server's certificate
// (1 year) and one client certificate per Gateway (30 days) that its data-plane pods present. A
// client certificate names its Gateway ONLY in a URI SAN, `spiffe://gatehouse.dev/ns/<ns>/gateway/<name>`:
// the distribution server takes the Gateway identity from there and from nothing else.
//
// node:crypto verifies certificates but cannot create them: @peculiar/x509 (on WebCrypto) builds
// them. It needs a Reflect metadata polyfill (tsyringe), imported first.
import "reflect-metadata";
import { createPrivateKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { GatehouseError } from "../errors.ts";
import type { CAStore, StoredCA } from "./castore.ts";
import type { ClientCertificateIssuer, IssuedCertificate } from "./contract.ts";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const subtle = webcrypto.subtle;

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 24 * 3600 * 1000;
export const CA_LIFETIME_MS = 3650 * DAY_MS;
export const SERVER_LIFETIME_MS = 365 * DAY_MS;
export const CLIENT_LIFETIME_MS = 30 * DAY_MS;
/** Certificates start this much before "now", for clocks a little behind the controller's. */
const BACKDATE_MS = 5 * 60 * 1000;

export const IDENTITY_PREFIX = "spiffe://gatehouse.dev/ns/";
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The CA cannot be loaded, created or used (a broken Secret, a key that does not match, ...). */
export class CertificateAuthorityError extends GatehouseError {}

export interface GatewayIdentity {
  namespace: string;
  name: string;
}

/** The URI SAN naming a Gateway in its data-plane client certificate. */
export function gatewayIdentityUri(gateway: GatewayIdentity): string {
  if (!DNS_LABEL.test(gateway.namespace) || !DNS_SUBDOMAIN.test(gateway.name))
    throw new CertificateAuthorityError(
      `not a Gateway namespace/name: ${JSON.stringify(`${gateway.namespace}/${gateway.name}`)}`,
    );
  return `${IDENTITY_PREFIX}${gateway.namespace}/gateway/${gateway.name}`;
}

/** The Gateway a URI SAN names, or undefined when it is not one of ours (strict: no extra segments). */
export function parseGatewayIdentityUri(uri: string): GatewayIdentity | undefined {
  if (!uri.startsWith(IDENTITY_PREFIX)) return undefined;
  const parts = uri.slice(IDENTITY_PREFIX.length).split("/");
  if (parts.length !== 3 || parts[1] !== "gateway") return undefined;
  const [namespace = "", , name = ""] = parts;
  if (!DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) return undefined;
  return { namespace, name };
}

/**
 * The Gateway a (client) certificate names: its URI SANs must hold exactly one Gateway identity.
 * Undefined for anything else (no SAN, two identities, a malformed one).
 */
export function gatewayIdentityOfCertificate(der: Uint8Array): GatewayIdentity | undefined {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(der);
  } catch {
    return undefined;
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (san === null) return undefined;
  const identities = san.names.items
    .filter((n) => n.type === "url")
    .map((n) => parseGatewayIdentityUri(n.value));
  if (identities.length !== 1) return undefined;
  return identities[0];
}

/**
 * True in the last third of the certificate's lifetime (and after it): the reconciler re-issues
 * then, so a rotated Secret reaches the pods long before the old certificate expires.
 */
export function needsRenewal(certPem: string, now: Date): boolean {
  const cert = new NodeX509(certPem);
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  return now.getTime() >= to - (to - from) / 3;
}

export interface CertificateAuthorityOptions {
  now?: () => Date;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

interface Loaded {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: StoredCA;
}

export class CertificateAuthority implements ClientCertificateIssuer {
  readonly #ca: Loaded;
  readonly #now: () => Date;

  private constructor(ca: Loaded, now: () => Date) {
    this.#ca = ca;
    this.#now = now;
  }

  /**
   * Loads the CA from `store`, or creates one (10 years) and saves it. When two replicas race, the
   * store keeps the first and both use it (CAStore.create returns the CA stored).
   */
  static async open(
    store: CAStore,
    options: CertificateAuthorityOptions = {},
  ): Promise<CertificateAuthority> {
    const now = options.now ?? (() => new Date());
    let stored = await store.load();
    if (stored === undefined) {
      const created = await createCA(now());
      stored = await store.create(created);
      if (stored.certPem === created.certPem)
        options.log?.info({ store: store.describe() }, "created the data-plane certificate authority");
    }
    const loaded = await importCA(stored, store.describe());
    const expires = loaded.cert.notAfter;
    if (expires.getTime() <= now().getTime())
      throw new CertificateAuthorityError(
        `${store.describe()}: the CA certificate expired on ${expires.toISOString()}; delete it to create a new one (every data-plane pod then needs new certificates)`,
      );
    if (needsRenewal(stored.certPem, now()))
      options.log?.warn(
        { store: store.describe(), notAfter: expires.toISOString() },
        "the data-plane CA is in the last third of its lifetime; plan its replacement",
      );
    return new CertificateAuthority(loaded, now);
  }

  /** The CA certificate (PEM): what both ends trust. */
  get caPem(): string {
    return this.#ca.pem.certPem;
  }

  /** The distribution server's certificate (1 year). */
  async issueServer(names: {
    dnsNames: readonly string[];
    ipAddresses: readonly string[];
  }): Promise<IssuedCertificate> {
    if (names.dnsNames.length + names.ipAddresses.length === 0)
      throw new CertificateAuthorityError("a server certificate needs at least one DNS name or IP address");
    const sans = [
      ...names.dnsNames.map((value) => ({ type: "dns" as const, value })),
      ...names.ipAddresses.map((value) => ({ type: "ip" as const, value })),
    ];
    return this.#issue(names.dnsNames[0] ?? names.ipAddresses[0] ?? "", sans, "server", SERVER_LIFETIME_MS);
  }

  /** A Gateway's data-plane client certificate (30 days), its identity in a URI SAN. */
  async issueClient(gateway: GatewayIdentity): Promise<IssuedCertificate> {
    const uri = gatewayIdentityUri(gateway);
    return this.#issue(
      `${gateway.namespace}/${gateway.name}`,
      [{ type: "url", value: uri }],
      "client",
      CLIENT_LIFETIME_MS,
    );
  }

  /**
   * A client certificate issued earlier (found in the Gateway's Secret after a controller restart),
   * if it is still good: the CA's own, signed by it, naming exactly `gateway`, matching its key, and
   * not due for renewal. Undefined otherwise (then issueClient()). Re-using it spares every Gateway
   * a new certificate, and its Secret a write, at each controller start.
   */
  adoptClient(
    gateway: GatewayIdentity,
    stored: { certPem: string; keyPem: string; caPem: string },
  ): IssuedCertificate | undefined {
    try {
      if (stored.caPem.trim() !== this.caPem.trim()) return undefined;
      const cert = new NodeX509(stored.certPem);
      if (!cert.verify(new NodeX509(this.caPem).publicKey)) return undefined;
      const identity = gatewayIdentityOfCertificate(new Uint8Array(cert.raw));
      if (identity?.namespace !== gateway.namespace || identity.name !== gateway.name) return undefined;
      if (!cert.checkPrivateKey(createPrivateKey(stored.keyPem))) return undefined;
      if (needsRenewal(stored.certPem, this.#now())) return undefined;
      return {
        certPem: stored.certPem,
        keyPem: stored.keyPem,
        caPem: this.caPem,
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
      };
    } catch {
      return undefined; // not PEM, not a certificate, not a key: not adoptable
    }
  }

  async #issue(
    commonName: string,
    sans: ReadonlyArray<{ type: "dns" | "ip" | "url"; value: string }>,
    usage: "server" | "client",
    lifetimeMs: number,
  ): Promise<IssuedCertificate> {
    const now = this.#now().getTime();
    const notBefore = new Date(now - BACKDATE_MS);
    const notAfter = new Date(Math.min(now + lifetimeMs, this.#ca.cert.notAfter.getTime()));
    const keys = await subtle.generateKey(ALG, true, ["sign", "verify"]);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: new x509.Name([{ CN: [commonName.replace(/[^A-Za-z0-9./ -]/g, "_")] }]),
      issuer: this.#ca.cert.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.#ca.keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(
          [usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
          false,
        ),
        new x509.SubjectAlternativeNameExtension([...sans], usage === "client"),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.#ca.cert),
      ],
    });
    return {
      certPem: cert.toString("pem") + "\n",
      keyPem: await privateKeyPem(keys.privateKey),
      caPem: this.caPem,
      notBefore,
      notAfter,
    };
  }
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return bytes.toString("hex");
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey("pkcs8", key));
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" })
    .export({ format: "pem", type: "pkcs8" })
    .toString();
}

async function createCA(now: Date): Promise<StoredCA> {
  const keys = await subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: new x509.Name([{ O: ["gatehouse"] }, { CN: ["gatehouse data-plane CA"] }]),
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + CA_LIFETIME_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: await privateKeyPem(keys.privateKey) };
}

async function importCA(stored: StoredCA, where: string): Promise<Loaded> {
  try {
    const cert = new x509.X509Certificate(stored.certPem);
    const basic = cert.getExtension(x509.BasicConstraintsExtension);
    if (basic === null || !basic.ca) throw new Error("the certificate is not a CA certificate");
    const der = createPrivateKey(stored.keyPem).export({ format: "der", type: "pkcs8" });
    const privateKey = await subtle.importKey("pkcs8", der, ALG, false, ["sign"]);
    const publicKey = new NodeX509(stored.certPem).publicKey.toCryptoKey(ALG, true, ["verify"]);
    // The key must be the certificate's: sign and verify one message.
    const probe = randomBytes(32);
    const signature = await subtle.sign(ALG, privateKey, probe);
    if (!(await subtle.verify(ALG, publicKey, signature, probe)))
      throw new Error("the key does not match the certificate");
    return { cert, keys: { privateKey, publicKey }, pem: stored };
  } catch (err) {
    // The message never includes key material: only what failed.
    throw new CertificateAuthorityError(
      `${where}: not a usable ECDSA P-256 CA: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
