#!/usr/bin/env node
/* global process, setTimeout */
// The gatehouse command. Plain JavaScript so that it can check the Node.js version before loading
// the TypeScript sources, which need Node.js 24 (type stripping). The import below is dynamic for
// the same reason: a static import would be loaded, and fail, before this check runs.

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(
    `gatehouse: Node.js 24 or newer is required (it runs the TypeScript sources directly), ` +
      `but this is Node.js ${process.versions.node} (${process.execPath}).\n` +
      `Run \`npm ci\` once, then use \`npx gatehouse ...\` or \`npm run gatehouse -- ...\`: ` +
      `they run Gatehouse with the Node.js 24 of the \`node\` dev dependency.\n`,
  );
  process.exit(1);
}

await enableCompileCache();

const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));

/**
 * Node's compile cache (the TypeScript sources' stripped text and V8's code cache) in a private
 * directory: with it, a start neither loads the type stripper (about 17 MiB per thread that loads
 * TypeScript: the main thread and the admin server's worker) nor compiles the sources again.
 * The directory: $GATEHOUSE_COMPILE_CACHE (`off`: no cache), else $XDG_CACHE_HOME/gatehouse/
 * compile-cache, else ~/.cache/gatehouse/compile-cache. It must be a directory of this user that
 * no one else can write (the cache holds code that is run); otherwise, or when it cannot be created
 * (a read-only file system), Gatehouse runs without it. NODE_COMPILE_CACHE, when set, wins.
 */
async function enableCompileCache() {
  if (process.env.NODE_COMPILE_CACHE !== undefined) return;
  const setting = process.env.GATEHOUSE_COMPILE_CACHE;
  if (setting === "off") return;
  const [{ mkdirSync, statSync }, { homedir }, { join, resolve }, module] = await Promise.all([
    import("node:fs"),
    import("node:os"),
    import("node:path"),
    import("node:module"),
  ]);
  if (typeof module.enableCompileCache !== "function") return;
  let dir;
  try {
    const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
    dir = resolve(setting || join(base, "gatehouse", "compile-cache"));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    const uid = typeof process.getuid === "function" ? process.getuid() : st.uid;
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) return;
  } catch {
    return;
  }
  const result = module.enableCompileCache(dir);
  if (result.status === module.constants.compileCacheStatus.FAILED) return;
  // Worker threads (the admin server's) read it from the environment when they start.
  process.env.NODE_COMPILE_CACHE = dir;
  // Entries are written when the process exits; a gateway runs for long and may be killed, so the
  // entries of the modules loaded at start are written once it has started.
  setTimeout(() => module.flushCompileCache(), 15_000).unref();
}
