import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { providerContract } from "../contract.ts";
import { FileProvider } from "./provider.ts";

providerContract("file", {
  async create(sources) {
    const root = await mkdtemp(join(tmpdir(), "gatehouse-contract-"));
    const file = (name: string) => join(root, `${name}.yaml`);
    for (const [name, yaml] of Object.entries(sources)) await writeFile(file(name), yaml);
    return {
      provider: new FileProvider({ path: root, debounceMs: 10 }),
      set: async (name, yaml) => {
        if (yaml === undefined) await rm(file(name));
        else await writeFile(file(name), yaml);
      },
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
});
