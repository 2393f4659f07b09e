// Test helper: a real IR with a TLS certificate and its private key, from a translator golden input.
import { fileURLToPath } from "node:url";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import type { IR } from "../ir/types.ts";
import { loadSnapshot } from "../resources/load.ts";
import { DEFAULT_CONTROLLER_NAME, translate } from "../translate/index.ts";

export const TLS_INPUT = fileURLToPath(
  new URL("../../testdata/translate/grpcroute-https-listener.in.yaml", import.meta.url),
);

/** The IR of TLS_INPUT: an HTTPS listener whose certificate carries its private key. */
export async function irWithKey(): Promise<IR> {
  const loaded = await loadSnapshot(TLS_INPUT);
  return translate(loaded.snapshot, {
    controllerName: DEFAULT_CONTROLLER_NAME,
    now: "2025-01-01T00:00:00Z",
    validators: haproxyValidators,
  }).ir;
}

/** The private keys (PEM) an IR carries. */
export function keysOf(ir: IR): string[] {
  return ir.gateways.flatMap((g) =>
    g.listeners.flatMap((l) => (l.tls?.certificates ?? []).map((c) => c.keyPem)),
  );
}
