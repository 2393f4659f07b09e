// Preloaded into the Gatehouse process by the memory bench (NODE_OPTIONS="--expose-gc --import ...").
// SIGUSR2 runs a full garbage collection, so that RSS and heap are read after one.
const gc = (globalThis as { gc?: () => void }).gc;
process.on("SIGUSR2", () => {
  if (gc === undefined) return;
  gc();
  gc();
  process.stderr.write(`gatehouse-bench: gc done\n`);
});
