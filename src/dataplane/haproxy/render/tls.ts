// TLS termination files: one crt-list per terminating frontend, PEM bundles (certificate chain +
// key) per certificate, and client CA bundles per listener. crt-list rows carry SNI filters (the
// listener hostname, or the certificate's DNS names for a listener without one) and per-row options
// (ALPN, client certificate verification). The first row is the default certificate (no SNI match):
// the first certificate of the catch-all listener when there is one, else of the first listener.
import type { IRCertificate } from "../../../ir/types.ts";
import { digest, type RenderContext } from "./model.ts";
import { bySpecificity, ignoresClientCertErrors, type ListenerRef } from "./plan.ts";

function pemBundle(c: IRCertificate): string {
  return `${c.certPem.trim()}\n${c.keyPem.trim()}\n`;
}

function certFile(ctx: RenderContext, c: IRCertificate): string {
  const content = pemBundle(c);
  const wanted = c.id.replace(/[^A-Za-z0-9._-]/g, "_");
  const name = ctx.claim("file", `tls/certs/${wanted}`, `cert\0${c.id}\0${digest(content)}`);
  const rel = `${name}.pem`;
  ctx.addFile(rel, content);
  return rel;
}

function clientCAFile(ctx: RenderContext, r: ListenerRef, pems: readonly string[]): string {
  const rel = `tls/client-ca/${r.lid}.pem`;
  ctx.addFile(rel, pems.map((pem) => `${pem.trim()}\n`).join(""));
  return rel;
}

/** Writes `tls/<frontend>.crtlist` (and the files it names) for the terminating `listeners`. */
export function writeCrtList(
  ctx: RenderContext,
  feName: string,
  listeners: readonly ListenerRef[],
  http: boolean,
): void {
  const catchAll = listeners.find((r) => r.listener.hostname === undefined || r.listener.hostname === "*");
  const first = catchAll ?? listeners[0];
  const ordered = first === undefined ? [] : [first, ...bySpecificity(listeners).filter((r) => r !== first)];
  // Names served by a listener with a hostname are excluded (`!name`) from catch-all rows, so the
  // specific listener's certificate is the one presented for them.
  const specific = new Set(
    listeners.flatMap((r) =>
      r.listener.hostname !== undefined && r.listener.hostname !== "*" ? [r.listener.hostname] : [],
    ),
  );
  const rows: string[] = [];
  const seen = new Set<string>();
  const ignoreErrors = ignoresClientCertErrors(listeners);
  for (const r of ordered) {
    const tls = r.listener.tls;
    if (tls === undefined) continue;
    const opts: string[] = [];
    if (http) opts.push("alpn h2,http/1.1");
    const cv = tls.clientValidation;
    if (cv !== undefined && cv.caCertificates.length > 0) {
      if (cv.mode === "AllowValidOnly" || ignoreErrors) {
        opts.push(`ca-file ${ctx.abs(clientCAFile(ctx, r, cv.caCertificates))}`);
        opts.push(`verify ${cv.mode === "AllowValidOnly" ? "required" : "optional"}`);
      } else {
        opts.push("verify none");
      }
    }
    for (const c of tls.certificates) {
      const h = r.listener.hostname;
      const filters =
        h !== undefined && h !== "*"
          ? [h]
          : [
              ...c.dnsNames.filter((n) => !specific.has(n)),
              ...c.dnsNames.filter((n) => specific.has(n)).map((n) => `!${n}`),
            ];
      const row = [
        ctx.abs(certFile(ctx, c)),
        ...(opts.length > 0 ? [`[${opts.join(" ")}]`] : []),
        ...filters,
      ].join(" ");
      if (seen.has(row)) continue;
      seen.add(row);
      rows.push(row);
    }
  }
  ctx.addFile(`tls/${feName}.crtlist`, rows.map((row) => `${row}\n`).join(""));
}
