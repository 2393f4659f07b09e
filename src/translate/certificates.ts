// TLS certificate references of listeners: resolving Secrets and checking key pairs.
// Parsing PEM is pure computation (node:crypto performs no I/O), so it belongs in the translator.
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { Secret } from "../resources/core.ts";
import type { IRCertificate } from "../ir/types.ts";

export type CertificateResult = { ok: true; certificate: IRCertificate } | { ok: false; message: string };

/** Secret data with `stringData` merged over base64-decoded `data`, as the API server stores it. */
export function secretData(secret: Secret): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(secret.data ?? {}))
    out.set(k, Buffer.from(v, "base64").toString("utf8"));
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out.set(k, v);
  return out;
}

/** Validates a kubernetes.io/tls Secret and returns its certificate and key. */
export function certificateFromSecret(secret: Secret): CertificateResult {
  const id = `${secret.metadata.namespace ?? "default"}/${secret.metadata.name}`;
  if (secret.type !== "kubernetes.io/tls") {
    return { ok: false, message: `Secret ${id} has type ${secret.type ?? "Opaque"}, want kubernetes.io/tls` };
  }
  const data = secretData(secret);
  const certPem = data.get("tls.crt");
  const keyPem = data.get("tls.key");
  if (certPem === undefined || certPem === "") return { ok: false, message: `Secret ${id} has no tls.crt` };
  if (keyPem === undefined || keyPem === "") return { ok: false, message: `Secret ${id} has no tls.key` };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    // The parser's own error text depends on the OpenSSL build; keep the message stable.
    return { ok: false, message: `Secret ${id}: tls.crt is not a PEM-encoded X.509 certificate` };
  }
  try {
    const key = createPrivateKey(keyPem);
    if (!cert.checkPrivateKey(key)) {
      return { ok: false, message: `Secret ${id}: tls.key does not match the certificate in tls.crt` };
    }
  } catch {
    return { ok: false, message: `Secret ${id}: tls.key is not a PEM-encoded private key` };
  }
  return {
    ok: true,
    certificate: {
      id,
      certPem: ensureNewline(certPem),
      keyPem: ensureNewline(keyPem),
      dnsNames: dnsNames(cert),
    },
  };
}

function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san !== undefined) {
    const names = san
      .split(/,\s*/)
      .filter((part) => part.startsWith("DNS:"))
      .map((part) => part.slice(4).toLowerCase());
    if (names.length > 0) return [...new Set(names)].sort();
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

function ensureNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : pem + "\n";
}
