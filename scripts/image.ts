// `npm run image`: builds dist/gatehouse.oci.tar, an OCI image layout in a tar, without a registry
// or a container engine. Four layers, each cached by a hash of what it is made of:
//
//   base   Debian bookworm from mmdebstrap (image/rootfs.sh): haproxy, ca-certificates, iproute2
//   node   Node.js 24, the platform binary of the npm `node` package (stripped) + its licence
//   deps   Gatehouse's production dependencies (`npm ci --omit=dev --ignore-scripts`)
//   app    package.json, LICENSE, bin/, src/ (no tests), and /usr/local/bin/gatehouse
//
// Reproducible: every layer is a sorted tar with fixed owners, modes and mtimes; mmdebstrap gets
// SOURCE_DATE_EPOCH; the image's `created` is SOURCE_DATE_EPOCH (default: the commit time of
// HEAD; the base layer uses the commit time of the last change under image/, so that it stays
// cached across commits). The finished image is cached too, keyed by a hash of every input, so an
// unchanged tree rebuilds in about a second.
//
// Usage: npm run image [-- --no-cache] [--out PATH]
// Environment: SOURCE_DATE_EPOCH, GATEHOUSE_IMAGE_CACHE (default
// ${XDG_CACHE_HOME:-~/.cache}/gatehouse/image), GATEHOUSE_IMAGE_SOURCE (the source URL
// annotation), GATEHOUSE_DEBIAN_MIRROR, GATEHOUSE_DEBIAN_SECURITY_MIRROR, BUILD_NICE.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  compressLayer,
  writeLayout,
  type ImageMetadata,
  type Layer,
  type RuntimeConfig,
} from "./image-oci.ts";

/** Bump when the recipe changes in a way the hashed inputs do not show. */
const RECIPE = 1;
/** Part of every layer's cache key but the base's: this script and its OCI module. */
const SCRIPTS_HASH = hashOf(
  ["image.ts", "image-oci.ts"].map((file) => readFileSync(join(import.meta.dirname, file))),
);
const ROOT = resolve(import.meta.dirname, "..");
const IMAGE_NAME = "gatehouse";
const STATE_DIR = "/var/lib/gatehouse";

export const RUNTIME: RuntimeConfig = {
  user: "65532:65532",
  entrypoint: ["/usr/local/bin/gatehouse"],
  cmd: ["--help"],
  env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", `TMPDIR=${STATE_DIR}`],
  workingDir: STATE_DIR,
  volumes: [STATE_DIR],
};

const log = (message: string): void => void process.stderr.write(`image: ${message}\n`);

function run(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): void {
  const result = spawnSync(file, args, { stdio: ["ignore", "inherit", "inherit"], ...options });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0)
    throw new Error(`${file} ${args.join(" ")} exited with ${result.status ?? result.signal}`);
}

function output(file: string, args: readonly string[]): string {
  return execFileSync(file, args, { cwd: ROOT, encoding: "utf8" }).trim();
}

function hashOf(parts: readonly (string | Uint8Array)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(String(typeof part === "string" ? part.length : part.byteLength));
    hash.update("\0");
    hash.update(part);
  }
  return hash.digest("hex");
}

function fileHash(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Paths (relative to ROOT) of the files that go into the app layer. */
function appFiles(): string[] {
  const listed = output("git", [
    "ls-files",
    "-z",
    "--cached",
    "--others",
    "--exclude-standard",
    "--",
    "bin",
    "src",
  ]).split("\0");
  const sources = listed.filter(
    (path) =>
      path !== "" &&
      !path.endsWith(".test.ts") &&
      !path.endsWith("/testutil.ts") &&
      !path.endsWith(".md") &&
      existsSync(join(ROOT, path)),
  );
  return [...new Set(["package.json", "LICENSE", ...sources])].sort();
}

/** tar flags that make an archive depend only on the files' names and contents. */
function reproducibleTar(out: string, dir: string, epoch: number): string[] {
  return [
    "--create",
    `--file=${out}`,
    `--directory=${dir}`,
    "--sort=name",
    `--mtime=@${epoch}`,
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--mode=u=rwX,go=rX",
  ];
}

/**
 * Writes a layer tar of `stage` (its root becomes /): sorted names, owner root, modes u=rwX,go=rX,
 * every mtime `epoch`, PAX headers without atime/ctime or process ids.
 */
function tarLayer(stage: string, out: string, epoch: number): void {
  run("tar", [
    ...reproducibleTar(out, stage, epoch),
    "--format=pax",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    ".",
  ]);
}

interface Context {
  cache: string;
  noCache: boolean;
  epoch: number;
  baseEpoch: number;
}

/** Returns `${cache}/<kind>/<key>/<file>`, building it with `build(tmpPath)` unless cached. */
function cached(ctx: Context, kind: string, key: string, file: string, build: (tmp: string) => void): string {
  const dir = join(ctx.cache, kind, key.slice(0, 24));
  const path = join(dir, file);
  if (!ctx.noCache && existsSync(path)) {
    log(`${kind}: cached (${key.slice(0, 12)})`);
    touch(dir);
    return path;
  }
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${process.pid}.${file}`);
  rmSync(tmp, { recursive: true, force: true });
  const started = Date.now();
  build(tmp);
  rmSync(path, { recursive: true, force: true });
  renameSync(tmp, path);
  log(`${kind}: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return path;
}

/** Marks a cache entry as used now (prune keeps the most recently used). */
function touch(dir: string): void {
  const now = new Date();
  utimesSync(dir, now, now);
}

/** How many entries of each kind the cache keeps (most recently used first). */
const KEEP_ENTRIES: Record<string, number> = { base: 2, node: 2, deps: 3, app: 4, blobs: 12, images: 3 };

/** Removes all but the most recently used entries of each kind, so the cache stays bounded. */
function pruneCache(cache: string): void {
  for (const [kind, keep] of Object.entries(KEEP_ENTRIES)) {
    const dir = join(cache, kind);
    if (!existsSync(dir)) continue;
    const entries = readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => ({ path: join(dir, entry.name), used: statSync(join(dir, entry.name)).mtimeMs }))
      .sort((a, b) => b.used - a.used);
    for (const stale of entries.slice(keep)) rmSync(stale.path, { recursive: true, force: true });
  }
}

function withStage<T>(ctx: Context, fill: (stage: string) => T): T {
  const stage = mkdtempSync(join(ctx.cache, "stage-"));
  try {
    return fill(stage);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function baseLayer(ctx: Context): string {
  const recipe = ["rootfs.sh", "customize.sh"].map((file) => readFileSync(join(ROOT, "image", file)));
  const key = hashOf([
    `recipe=${RECIPE} epoch=${ctx.baseEpoch}`,
    process.env.GATEHOUSE_DEBIAN_MIRROR ?? "",
    process.env.GATEHOUSE_DEBIAN_SECURITY_MIRROR ?? "",
    ...recipe,
  ]);
  return cached(ctx, "base", key, "layer.tar", (tmp) => {
    log(`base: mmdebstrap (SOURCE_DATE_EPOCH=${ctx.baseEpoch}) ...`);
    run("bash", [join(ROOT, "image", "rootfs.sh"), tmp], {
      env: { ...process.env, SOURCE_DATE_EPOCH: String(ctx.baseEpoch) },
    });
  });
}

/** The platform binary the npm `node` package installed (node-<os>-<arch>), checked to be Node 24. */
function nodeBinary(): { binary: string; license: string; version: string } {
  const pkg = join(ROOT, "node_modules", "node");
  const platform = join(pkg, "node_modules", `node-${process.platform}-${process.arch}`);
  const binary = join(platform, "bin", "node");
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run npm ci first`);
  const version = execFileSync(binary, ["--version"], { encoding: "utf8" }).trim();
  if (!version.startsWith("v24.")) throw new Error(`${binary} is Node.js ${version}, not 24`);
  return { binary, license: join(platform, "LICENSE"), version };
}

function nodeLayer(ctx: Context): string {
  const node = nodeBinary();
  const key = hashOf([
    `recipe=${RECIPE} ${SCRIPTS_HASH} epoch=${ctx.baseEpoch}`,
    fileHash(node.binary),
    fileHash(node.license),
  ]);
  return cached(ctx, "node", key, "layer.tar", (tmp) =>
    withStage(ctx, (stage) => {
      mkdirSync(join(stage, "usr/local/bin"), { recursive: true });
      mkdirSync(join(stage, "usr/local/share/doc/node"), { recursive: true });
      // The package's binary carries debug info; stripped, it is 18 MB smaller.
      run("strip", ["--strip-all", "-o", join(stage, "usr/local/bin/node"), node.binary]);
      copyFileSync(node.license, join(stage, "usr/local/share/doc/node/LICENSE"));
      log(`node: ${node.version}`);
      tarLayer(stage, tmp, ctx.baseEpoch);
    }),
  );
}

function depsLayer(ctx: Context): string {
  const lock = readFileSync(join(ROOT, "package-lock.json"));
  const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, unknown>;
  const key = hashOf([
    `recipe=${RECIPE} ${SCRIPTS_HASH} epoch=${ctx.baseEpoch}`,
    lock,
    JSON.stringify(manifest.dependencies ?? {}),
  ]);
  return cached(ctx, "deps", key, "layer.tar", (tmp) =>
    withStage(ctx, (stage) => {
      const app = join(stage, "opt/gatehouse");
      mkdirSync(app, { recursive: true });
      copyFileSync(join(ROOT, "package.json"), join(app, "package.json"));
      copyFileSync(join(ROOT, "package-lock.json"), join(app, "package-lock.json"));
      // No install scripts: no production dependency has one (and none may run at build time).
      run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], {
        cwd: app,
      });
      // Only node_modules belongs to this layer; package.json comes with the app layer.
      rmSync(join(app, "package.json"));
      rmSync(join(app, "package-lock.json"));
      rmSync(join(app, "node_modules/.package-lock.json"), { force: true });
      const removed = pruneNodeModules(join(app, "node_modules"));
      log(`deps: pruned ${mib(removed)} of type declarations, source maps and docs`);
      tarLayer(stage, tmp, ctx.baseEpoch);
    }),
  );
}

function appLayer(ctx: Context, files: readonly string[]): string {
  const key = hashOf([
    `recipe=${RECIPE} ${SCRIPTS_HASH} epoch=${ctx.epoch}`,
    ...files.flatMap((file) => [file, readFileSync(join(ROOT, file))]),
  ]);
  return cached(ctx, "app", key, "layer.tar", (tmp) =>
    withStage(ctx, (stage) => {
      for (const file of files) {
        const target = join(stage, "opt/gatehouse", file);
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(join(ROOT, file), target);
      }
      mkdirSync(join(stage, "usr/local/bin"), { recursive: true });
      symlinkSync("/opt/gatehouse/bin/gatehouse.js", join(stage, "usr/local/bin/gatehouse"));
      tarLayer(stage, tmp, ctx.epoch);
    }),
  );
}

/** Files nothing loads at run time: type declarations, source maps, markdown (licences stay). */
const PRUNE = /\.(d\.[cm]?ts|map|md|markdown)$/;
const KEEP = /^(licen[cs]e|notice|copying)/i;

/** Removes what PRUNE matches under `dir`; returns the bytes removed. */
function pruneNodeModules(dir: string): number {
  let removed = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !PRUNE.test(entry.name) || KEEP.test(entry.name)) continue;
    const path = join(entry.parentPath, entry.name);
    removed += statSync(path).size;
    rmSync(path);
  }
  return removed;
}

/** The gzip blob of a layer tar, cached by the tar's own hash. */
async function compressed(
  ctx: Context,
  tar: string,
  createdBy: string,
): Promise<{ layer: Layer; file: string }> {
  const key = fileHash(tar);
  const dir = join(ctx.cache, "blobs", key);
  const meta = join(dir, "layer.json");
  if (!ctx.noCache && existsSync(meta)) {
    touch(dir);
    const layer = { ...(JSON.parse(readFileSync(meta, "utf8")) as Layer), createdBy };
    return { layer, file: join(dir, "layer.tar.gz") };
  }
  mkdirSync(dir, { recursive: true });
  const layer = await compressLayer(tar, join(dir, "layer.tar.gz"), createdBy);
  writeFileSync(meta, JSON.stringify(layer));
  return { layer, file: join(dir, "layer.tar.gz") };
}

function gitMetadata(): { revision: string; epoch: number; baseEpoch: number } {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  let revision = process.env.GATEHOUSE_IMAGE_REVISION ?? "unknown";
  let epoch = fromEnv === undefined ? undefined : Number(fromEnv);
  let baseEpoch = epoch;
  try {
    const head = output("git", ["rev-parse", "HEAD"]);
    const dirty = output("git", [
      "status",
      "--porcelain",
      "--",
      "bin",
      "src",
      "image",
      "package.json",
      "LICENSE",
    ]);
    revision = process.env.GATEHOUSE_IMAGE_REVISION ?? (dirty === "" ? head : `${head}-dirty`);
    epoch ??= Number(output("git", ["log", "-1", "--format=%ct", "HEAD"]));
    const imageTime = output("git", ["log", "-1", "--format=%ct", "HEAD", "--", "image"]);
    baseEpoch ??= imageTime === "" ? epoch : Number(imageTime);
  } catch (error) {
    if (epoch === undefined) throw new Error("not a git checkout: set SOURCE_DATE_EPOCH", { cause: error });
  }
  if (epoch === undefined || !Number.isInteger(epoch) || epoch < 0) throw new Error("bad SOURCE_DATE_EPOCH");
  return { revision, epoch, baseEpoch: baseEpoch ?? epoch };
}

function metadata(version: string, revision: string, epoch: number): ImageMetadata {
  const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    license?: string;
    description?: string;
    repository?: string | { url?: string };
  };
  const repository = typeof manifest.repository === "string" ? manifest.repository : manifest.repository?.url;
  return {
    name: IMAGE_NAME,
    version,
    revision,
    created: epoch,
    source: process.env.GATEHOUSE_IMAGE_SOURCE ?? repository ?? "https://gatehouse.dev",
    licenses: manifest.license ?? "Apache-2.0",
    title: "Gatehouse",
    description: manifest.description ?? "Gatehouse",
  };
}

function tarLayout(layoutDir: string, out: string, epoch: number): void {
  run("tar", [
    ...reproducibleTar(out, layoutDir, epoch),
    "--format=ustar",
    "oci-layout",
    "index.json",
    "blobs",
  ]);
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export interface BuildResult {
  out: string;
  manifestDigest: string;
  compressedSize: number;
  uncompressedSize: number;
  cached: boolean;
}

export async function buildImage(options: { out: string; noCache: boolean }): Promise<BuildResult> {
  const started = Date.now();
  const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string })
    .version;
  const { revision, epoch, baseEpoch } = gitMetadata();
  const cache = resolve(
    process.env.GATEHOUSE_IMAGE_CACHE ??
      join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "gatehouse/image"),
  );
  mkdirSync(cache, { recursive: true });
  const ctx: Context = { cache, noCache: options.noCache, epoch, baseEpoch };
  const meta = metadata(version, revision, epoch);
  const files = appFiles();

  // The whole image, keyed by every input: recipe, scripts, Node binary, lockfile, app, metadata.
  const recipeFiles = ["image/rootfs.sh", "image/customize.sh", "scripts/image.ts", "scripts/image-oci.ts"];
  const imageKey = hashOf([
    `recipe=${RECIPE}`,
    JSON.stringify({
      meta,
      epoch,
      baseEpoch,
      env: [process.env.GATEHOUSE_DEBIAN_MIRROR, process.env.GATEHOUSE_DEBIAN_SECURITY_MIRROR],
    }),
    ...recipeFiles.map((file) => readFileSync(join(ROOT, file))),
    fileHash(nodeBinary().binary),
    readFileSync(join(ROOT, "package-lock.json")),
    ...files.flatMap((file) => [file, readFileSync(join(ROOT, file))]),
  ]);
  const imageDir = join(cache, "images", imageKey.slice(0, 24));
  const imageTar = join(imageDir, "gatehouse.oci.tar");
  const summaryPath = join(imageDir, "summary.json");
  mkdirSync(dirname(options.out), { recursive: true });
  if (!options.noCache && existsSync(imageTar) && existsSync(summaryPath)) {
    touch(imageDir);
    copyFileSync(imageTar, options.out);
    const summary = JSON.parse(readFileSync(summaryPath, "utf8")) as Omit<BuildResult, "out" | "cached">;
    log(`cached image ${imageKey.slice(0, 12)}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { ...summary, out: options.out, cached: true };
  }

  const parts: { tar: string; createdBy: string }[] = [
    {
      tar: baseLayer(ctx),
      createdBy: "mmdebstrap bookworm essential + haproxy ca-certificates iproute2 (image/rootfs.sh)",
    },
    { tar: nodeLayer(ctx), createdBy: "Node.js from the npm node package (/usr/local/bin/node)" },
    { tar: depsLayer(ctx), createdBy: "npm ci --omit=dev (/opt/gatehouse/node_modules)" },
    { tar: appLayer(ctx, files), createdBy: "Gatehouse (/opt/gatehouse, /usr/local/bin/gatehouse)" },
  ];
  const layers: Layer[] = [];
  const blobs = new Map<string, string>();
  for (const part of parts) {
    const { layer, file } = await compressed(ctx, part.tar, part.createdBy);
    layers.push(layer);
    blobs.set(layer.blob.digest, file);
  }

  const layoutDir = mkdtempSync(join(cache, "layout-"));
  try {
    const layout = writeLayout(layoutDir, meta, RUNTIME, layers, blobs);
    mkdirSync(imageDir, { recursive: true });
    const tmp = join(imageDir, `.gatehouse.oci.tar.${process.pid}`);
    tarLayout(layoutDir, tmp, epoch);
    renameSync(tmp, imageTar);
    const summary = {
      manifestDigest: layout.manifest.digest,
      compressedSize: layers.reduce((sum, layer) => sum + layer.blob.size, 0),
      uncompressedSize: layers.reduce((sum, layer) => sum + layer.tarSize, 0),
    };
    writeFileSync(summaryPath, JSON.stringify(summary));
    copyFileSync(imageTar, options.out);
    for (const [index, layer] of layers.entries()) {
      log(
        `layer ${index + 1}: ${mib(layer.blob.size)} compressed, ${mib(layer.tarSize)} tar, ${layer.createdBy}`,
      );
    }
    pruneCache(cache);
    log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { ...summary, out: options.out, cached: false };
  } finally {
    rmSync(layoutDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { "no-cache": { type: "boolean", default: false }, out: { type: "string" } },
  });
  const out = resolve(values.out ?? join(ROOT, "dist", "gatehouse.oci.tar"));
  const result = await buildImage({ out, noCache: values["no-cache"] });
  const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string })
    .version;
  process.stdout.write(
    `${result.out}\n` +
      `  ref       ${IMAGE_NAME}:${version}\n` +
      `  manifest  ${result.manifestDigest}\n` +
      `  size      ${mib(result.compressedSize)} compressed layers (${mib(statSync(result.out).size)} archive), ` +
      `${mib(result.uncompressedSize)} unpacked\n`,
  );
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `image: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
