// scripts/image-oci.ts: the OCI JSON is deterministic and says what the image spec and the issue
// ask for (annotations, the index's ref name, diff ids in layer order), and a layout written twice
// from the same layer is byte for byte the same.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  MEDIA_TYPE,
  canonicalJson,
  compressLayer,
  imageConfig,
  imageIndex,
  imageManifest,
  rfc3339,
  sha256,
  writeLayout,
  type ImageMetadata,
  type Layer,
  type RuntimeConfig,
} from "../../scripts/image-oci.ts";

const meta: ImageMetadata = {
  name: "gatehouse",
  version: "1.2.3",
  revision: "abc123",
  source: "https://example.com/gatehouse",
  licenses: "Apache-2.0",
  created: 1_700_000_000,
  title: "Gatehouse",
  description: "test image",
};
const runtime: RuntimeConfig = {
  user: "65532:65532",
  entrypoint: ["/usr/local/bin/gatehouse"],
  cmd: ["--help"],
  env: ["PATH=/usr/bin"],
  workingDir: "/var/lib/gatehouse",
  volumes: ["/var/lib/gatehouse"],
};
const layer = (n: number): Layer => ({
  blob: { mediaType: MEDIA_TYPE.layerGzip, digest: `sha256:${String(n).repeat(64)}`, size: n },
  diffId: `sha256:${String(n + 1).repeat(64)}`,
  tarSize: n * 10,
  createdBy: `layer ${n}`,
});

const work = mkdtempSync(join(tmpdir(), "gatehouse-oci-test-"));
after(() => rmSync(work, { recursive: true, force: true }));

void describe("OCI image JSON", () => {
  void test("canonical JSON sorts keys at every depth, keeps array order", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
  });

  void test("created is RFC 3339 from SOURCE_DATE_EPOCH", () => {
    assert.equal(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
  });

  void test("config: runtime settings, labels, diff ids and history in layer order", () => {
    const config = JSON.parse(imageConfig(meta, runtime, [layer(1), layer(2)])) as {
      config: { User: string; Entrypoint: string[]; Labels: Record<string, string>; Volumes: object };
      rootfs: { diff_ids: string[] };
      history: { created_by: string }[];
      created: string;
    };
    assert.equal(config.config.User, "65532:65532");
    assert.deepEqual(config.config.Entrypoint, ["/usr/local/bin/gatehouse"]);
    assert.deepEqual(config.config.Volumes, { "/var/lib/gatehouse": {} });
    assert.deepEqual(config.rootfs.diff_ids, [layer(1).diffId, layer(2).diffId]);
    assert.deepEqual(
      config.history.map((entry) => entry.created_by),
      ["layer 1", "layer 2"],
    );
    assert.equal(config.created, "2023-11-14T22:13:20Z");
    assert.deepEqual(config.config.Labels, {
      "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
      "org.opencontainers.image.description": "test image",
      "org.opencontainers.image.licenses": "Apache-2.0",
      "org.opencontainers.image.revision": "abc123",
      "org.opencontainers.image.source": "https://example.com/gatehouse",
      "org.opencontainers.image.title": "Gatehouse",
      "org.opencontainers.image.version": "1.2.3",
    });
  });

  void test("manifest lists the layer blobs; the index names the image <name>:<version>", () => {
    const config = { mediaType: MEDIA_TYPE.config, digest: sha256("{}"), size: 2 };
    const manifest = JSON.parse(imageManifest(meta, config, [layer(1)])) as {
      layers: unknown[];
      config: unknown;
      annotations: Record<string, string>;
    };
    assert.deepEqual(manifest.layers, [layer(1).blob]);
    assert.deepEqual(manifest.config, config);
    assert.equal(manifest.annotations["org.opencontainers.image.version"], "1.2.3");
    const index = JSON.parse(
      imageIndex(meta, { mediaType: MEDIA_TYPE.manifest, digest: sha256("m"), size: 1 }),
    ) as {
      manifests: { annotations: Record<string, string> }[];
    };
    assert.equal(index.manifests[0]?.annotations["org.opencontainers.image.ref.name"], "gatehouse:1.2.3");
  });

  void test("a layout written twice from the same layer tar is identical, blobs named by digest", async () => {
    const tar = join(work, "layer.tar");
    writeFileSync(tar, Buffer.alloc(10_240, 7));
    const layouts: string[] = [];
    for (const run of [1, 2]) {
      const compressed = await compressLayer(tar, join(work, `layer${run}.tar.gz`), "test layer");
      assert.equal(compressed.diffId, sha256(readFileSync(tar)));
      assert.equal(compressed.blob.digest, sha256(readFileSync(join(work, `layer${run}.tar.gz`))));
      const dir = join(work, `layout${run}`);
      const layout = writeLayout(
        dir,
        meta,
        runtime,
        [compressed],
        new Map([[compressed.blob.digest, join(work, `layer${run}.tar.gz`)]]),
      );
      for (const name of readdirSync(join(dir, "blobs", "sha256"))) {
        assert.equal(sha256(readFileSync(join(dir, "blobs", "sha256", name))), `sha256:${name}`);
      }
      layouts.push(`${layout.manifest.digest} ${readFileSync(join(dir, "index.json"), "utf8")}`);
    }
    assert.equal(layouts[0], layouts[1]);
  });
});
