// The OCI side of `npm run image`: gzip-compressed layers, the image config, the manifest and the
// index of an OCI image layout (image-spec v1.1), all deterministic: the same layer tars and
// metadata give the same bytes, hence the same digests. The JSON builders are pure; only
// compressLayer and writeLayout touch the file system.
import { createHash } from "node:crypto";
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  mkdirSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

export const MEDIA_TYPE = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** A layer as it goes into the image: its compressed blob and the digest of its uncompressed tar. */
export interface Layer {
  /** Digest and size of the gzip blob. */
  blob: Descriptor;
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids`). */
  diffId: string;
  /** Size of the uncompressed tar. */
  tarSize: number;
  /** What made the layer, for the config's history. */
  createdBy: string;
}

export interface ImageMetadata {
  /** e.g. "0.1.0". */
  version: string;
  /** The source's commit, e.g. a git SHA. */
  revision: string;
  /** Where the source lives (URL). */
  source: string;
  /** SPDX licence expression. */
  licenses: string;
  /** Seconds since the epoch: SOURCE_DATE_EPOCH. */
  created: number;
  /** Image name without a tag, e.g. "gatehouse". */
  name: string;
  title: string;
  description: string;
}

export interface RuntimeConfig {
  user: string;
  entrypoint: readonly string[];
  cmd: readonly string[];
  env: readonly string[];
  workingDir: string;
  volumes: readonly string[];
}

export function sha256(data: string | Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function rfc3339(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}

/** The OCI pre-defined annotations (image-spec annotations.md) the config, manifest and index carry. */
export function annotations(meta: ImageMetadata): Record<string, string> {
  return {
    "org.opencontainers.image.created": rfc3339(meta.created),
    "org.opencontainers.image.description": meta.description,
    "org.opencontainers.image.licenses": meta.licenses,
    "org.opencontainers.image.revision": meta.revision,
    "org.opencontainers.image.source": meta.source,
    "org.opencontainers.image.title": meta.title,
    "org.opencontainers.image.version": meta.version,
  };
}

/** Serialises with sorted keys, so the bytes never depend on the order properties were set in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return Object.fromEntries(entries.map(([key, inner]) => [key, sortKeys(inner)]));
  }
  return value;
}

export function imageConfig(meta: ImageMetadata, runtime: RuntimeConfig, layers: readonly Layer[]): string {
  const created = rfc3339(meta.created);
  return canonicalJson({
    created,
    architecture: "amd64",
    os: "linux",
    config: {
      User: runtime.user,
      Entrypoint: runtime.entrypoint,
      Cmd: runtime.cmd,
      Env: runtime.env,
      WorkingDir: runtime.workingDir,
      Volumes: Object.fromEntries(runtime.volumes.map((path) => [path, {}])),
      Labels: annotations(meta),
      StopSignal: "SIGTERM",
    },
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((layer) => ({ created, created_by: layer.createdBy })),
  });
}

export function imageManifest(meta: ImageMetadata, config: Descriptor, layers: readonly Layer[]): string {
  return canonicalJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config,
    layers: layers.map((layer) => layer.blob),
    annotations: annotations(meta),
  });
}

/** The layout's index.json: one manifest, named `<name>:<version>`. */
export function imageIndex(meta: ImageMetadata, manifest: Descriptor): string {
  return canonicalJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.index,
    manifests: [
      {
        ...manifest,
        annotations: {
          "org.opencontainers.image.ref.name": `${meta.name}:${meta.version}`,
          "org.opencontainers.image.created": rfc3339(meta.created),
        },
      },
    ],
  });
}

/** Hashes and counts bytes flowing through. */
class Digester extends Transform {
  readonly hash = createHash("sha256");
  size = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }
}

/**
 * Compresses a layer tar to `outPath` (gzip level 9; zlib's header carries no name and no mtime,
 * so the output depends on the bytes alone) and returns its descriptors.
 */
export async function compressLayer(tarPath: string, outPath: string, createdBy: string): Promise<Layer> {
  const raw = new Digester();
  const compressed = new Digester();
  const tmp = `${outPath}.tmp`;
  await pipeline(
    createReadStream(tarPath),
    raw,
    createGzip({ level: 9 }),
    compressed,
    createWriteStream(tmp),
  );
  renameSync(tmp, outPath);
  return {
    blob: {
      mediaType: MEDIA_TYPE.layerGzip,
      digest: `sha256:${compressed.hash.digest("hex")}`,
      size: compressed.size,
    },
    diffId: `sha256:${raw.hash.digest("hex")}`,
    tarSize: raw.size,
    createdBy,
  };
}

export interface Layout {
  manifest: Descriptor;
  config: Descriptor;
}

/**
 * Writes an OCI image layout into `dir` (which must be empty): `oci-layout`, `index.json` and the
 * blobs. `layerBlobs` maps each layer's blob digest to the file holding it (copied).
 */
export function writeLayout(
  dir: string,
  meta: ImageMetadata,
  runtime: RuntimeConfig,
  layers: readonly Layer[],
  layerBlobs: ReadonlyMap<string, string>,
): Layout {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const putBlob = (text: string, mediaType: string): Descriptor => {
    const bytes = Buffer.from(text, "utf8");
    const digest = sha256(bytes);
    writeFileSync(join(blobs, digest.slice("sha256:".length)), bytes);
    return { mediaType, digest, size: bytes.length };
  };
  for (const layer of layers) {
    const file = layerBlobs.get(layer.blob.digest);
    if (file === undefined) throw new Error(`no file for layer ${layer.blob.digest}`);
    copyFileSync(file, join(blobs, layer.blob.digest.slice("sha256:".length)));
  }
  const config = putBlob(imageConfig(meta, runtime, layers), MEDIA_TYPE.config);
  const manifest = putBlob(imageManifest(meta, config, layers), MEDIA_TYPE.manifest);
  writeFileSync(join(dir, "oci-layout"), canonicalJson({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "index.json"), imageIndex(meta, manifest));
  return { manifest, config };
}
