#!/usr/bin/env node
/* global process */
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

const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
