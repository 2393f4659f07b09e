// Key material never leaves the process: not through the admin API, the logs, nor `gatehouse
// translate`. The IR carries each listener certificate's private key, and each backend client
// certificate's (the data plane needs them);
// everything that shows an IR to a person goes through `redactIR`, which replaces the key with its
// SHA-256 fingerprint (enough to tell which key is loaded and to compare it with a file, see
// keyFingerprint). Free text that
// might quote a key (error messages, log lines) goes through `redactText` as a second line of
// defence. CA certificates and certificate chains are public and are kept.
import { createHash } from "node:crypto";
import type { IR, IRBackend, IRCertificate, IRGateway, IRListener } from "../ir/types.ts";

/** An IRCertificate as shown to people: the private key replaced by its fingerprint. */
export type RedactedCertificate = Omit<IRCertificate, "keyPem"> & { keySha256: string };

/** The IR as shown to people (`/config`, `gatehouse translate`). */
export interface RedactedIR {
  gateways: Array<
    Omit<IRGateway, "listeners"> & {
      listeners: Array<
        Omit<IRListener, "tls"> & {
          tls?: Omit<NonNullable<IRListener["tls"]>, "certificates"> & {
            certificates: RedactedCertificate[];
          };
        }
      >;
    }
  >;
  backends: Array<
    Omit<IRBackend, "tls"> & {
      tls?: Omit<NonNullable<IRBackend["tls"]>, "clientCertificate"> & {
        clientCertificate?: RedactedCertificate;
      };
    }
  >;
}

/**
 * `sha256:<hex>` of the key's PEM text with surrounding whitespace trimmed:
 * `printf %s "$(cat tls.key)" | sha256sum` gives the same hex.
 */
export function keyFingerprint(keyPem: string): string {
  return `sha256:${createHash("sha256").update(keyPem.trim()).digest("hex")}`;
}

export function redactCertificate(certificate: IRCertificate): RedactedCertificate {
  const { keyPem, ...rest } = certificate;
  return { ...rest, keySha256: keyFingerprint(keyPem) };
}

/**
 * A copy of `ir` without private keys. Only gateways, listeners and backends with keys are copied;
 * routes and other backends are shared with `ir` (cheap at any size; treat the result as read-only).
 */
export function redactIR(ir: IR): RedactedIR {
  return {
    gateways: ir.gateways.map((gateway) => ({
      ...gateway,
      listeners: gateway.listeners.map(({ tls, ...listener }) =>
        tls === undefined
          ? listener
          : { ...listener, tls: { ...tls, certificates: tls.certificates.map(redactCertificate) } },
      ),
    })),
    // A backend presenting a Gateway's client certificate carries that certificate's key.
    backends: ir.backends.map(({ tls, ...backend }) => {
      if (tls === undefined) return backend;
      const { clientCertificate, ...rest } = tls;
      return {
        ...backend,
        tls:
          clientCertificate === undefined
            ? rest
            : { ...rest, clientCertificate: redactCertificate(clientCertificate) },
      };
    }),
  };
}

export const REDACTED_KEY = "[REDACTED KEY]";

// A PEM private key block (PKCS#8, RSA, EC, ENCRYPTED, OPENSSH...), in plain text or JSON-escaped
// (`\n` as two characters): BEGIN up to its END line, or, when the END line is missing (a
// truncated quote), every base64, whitespace and escape character that follows.
const PEM_KEY =
  /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s\\:,-]*)/g;
// Base64 of "-----BEGIN " (how a Secret's `data` holds a PEM key), then the rest of the base64 run.
const BASE64_PEM = /LS0tLS1CRUdJTi[A-Za-z0-9+/=]*/g;

/** `text` with every private key (PEM, or base64 of PEM as in Secret data) replaced by REDACTED_KEY. */
export function redactText(text: string): string {
  if (!text.includes("PRIVATE KEY") && !text.includes("LS0tLS1CRUdJTi")) return text;
  return text.replace(PEM_KEY, REDACTED_KEY).replace(BASE64_PEM, (run) => {
    const decoded = Buffer.from(run, "base64").toString("latin1");
    return decoded.includes("PRIVATE KEY") ? REDACTED_KEY : run;
  });
}
