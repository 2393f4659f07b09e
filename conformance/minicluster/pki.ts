// Certificates of the mini-cluster, made with the openssl command (ECDSA P-256, valid 30 days): a
// CA, the API server's serving certificate, the fake kubelet's serving certificate and the client
// certificate the API server presents to the kubelet. Service-account signing keys (RSA) come from
// node:crypto.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./proc.ts";

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  kubeletCert: string;
  kubeletKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

interface CertRequest {
  name: string;
  subject: string;
  ips?: string[];
  dns?: string[];
  usage: "server" | "client";
}

async function openssl(...args: string[]): Promise<void> {
  await run("openssl", args, { timeoutMs: 30_000 });
}

async function issue(
  dir: string,
  caCert: string,
  caKey: string,
  request: CertRequest,
): Promise<[string, string]> {
  const key = join(dir, `${request.name}.key`);
  const csr = join(dir, `${request.name}.csr`);
  const cert = join(dir, `${request.name}.crt`);
  const ext = join(dir, `${request.name}.ext`);
  const san = [...(request.dns ?? []).map((d) => `DNS:${d}`), ...(request.ips ?? []).map((i) => `IP:${i}`)];
  await writeFile(
    ext,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${request.usage === "server" ? "serverAuth" : "clientAuth"}`,
      ...(san.length > 0 ? [`subjectAltName=${san.join(",")}`] : []),
      "",
    ].join("\n"),
  );
  await openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key);
  await openssl("req", "-new", "-key", key, "-subj", request.subject, "-out", csr);
  await openssl(
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    caCert,
    "-CAkey",
    caKey,
    "-set_serial",
    `0x${randomBytes(8).toString("hex")}`,
    "-days",
    "30",
    "-sha256",
    "-extfile",
    ext,
    "-out",
    cert,
  );
  await rm(csr);
  await rm(ext);
  return [cert, key];
}

export interface PkiOptions {
  /** IPs the API server is reached on (bridge IP, service IP, 127.0.0.1). */
  apiserverIPs: string[];
  nodeName: string;
  nodeIP: string;
}

export async function createPki(dir: string, options: PkiOptions): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caKey = join(dir, "ca.key");
  const caCert = join(dir, "ca.crt");
  await openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", caKey);
  await openssl(
    "req",
    "-x509",
    "-new",
    "-key",
    caKey,
    "-sha256",
    "-days",
    "30",
    "-subj",
    "/CN=gatehouse-minicluster-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-out",
    caCert,
  );
  const [apiserverCert, apiserverKey] = await issue(dir, caCert, caKey, {
    name: "apiserver",
    subject: "/CN=kube-apiserver",
    ips: options.apiserverIPs,
    dns: [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ],
    usage: "server",
  });
  const [kubeletCert, kubeletKey] = await issue(dir, caCert, caKey, {
    name: "kubelet",
    subject: `/CN=system:node:${options.nodeName}/O=system:nodes`,
    ips: [options.nodeIP],
    dns: [options.nodeName],
    usage: "server",
  });
  const [kubeletClientCert, kubeletClientKey] = await issue(dir, caCert, caKey, {
    name: "apiserver-kubelet-client",
    subject: "/CN=kube-apiserver-kubelet-client/O=system:masters",
    usage: "client",
  });
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  const serviceAccountKey = join(dir, "sa.key");
  const serviceAccountPub = join(dir, "sa.pub");
  await writeFile(serviceAccountKey, privateKey, { mode: 0o600 });
  await writeFile(serviceAccountPub, publicKey);
  return {
    dir,
    caCert,
    caKey,
    apiserverCert,
    apiserverKey,
    kubeletCert,
    kubeletKey,
    kubeletClientCert,
    kubeletClientKey,
    serviceAccountKey,
    serviceAccountPub,
  };
}

export function randomToken(): string {
  return randomBytes(24).toString("base64url");
}
