// The `yaml` library, loaded on first use: plain input is parsed with js-yaml (yaml-fast.ts), and
// `yaml` is needed only for input with errors, tags or anchors, or to locate a rejected field. Not
// loading it up front saves ≈ 40 ms of each `gatehouse translate`.
import { createRequire } from "node:module";

type YamlLibrary = typeof import("yaml");

const require = createRequire(import.meta.url);
let library: YamlLibrary | undefined;

/** The `yaml` module (the same instance an `import` would give). */
export function yamlLibrary(): YamlLibrary {
  library ??= require("yaml") as YamlLibrary;
  return library;
}
