// The admin dashboard end to end in headless Chromium (Debian's `chromium`): the page behind the
// admin token shows the Gateways, listeners and routes with their conditions, says why a route is
// not served, and a route rule's request counter moves after traffic through HAProxy.
// GATEHOUSE_UPDATE_SCREENSHOT=1 writes the page to docs/dashboard.png (the README's screenshot).
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Browser, chromiumAvailable } from "./browser.ts";
import { useHarness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, prefix, ref, service } from "./resources.ts";

const TOKEN = "dashboard-test-token-4f1c";
// In CI Chromium must be there (scripts/install.sh installs it); elsewhere the test says it skipped.
const skip =
  !chromiumAvailable() && process.env["CI"] !== "true"
    ? "chromium is not installed (apt-get install chromium)"
    : false;

const harness = useHarness({
  backends: { web: "http", api: "http" },
  adminToken: TOKEN,
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.ports[0] ?? 0 }]),
      service("web", { endpoints: [h.backend("web").endpoint] }),
      service("api", { endpoints: [h.backend("api").endpoint] }),
    ),
    "routes.yaml": docs(
      httpRoute("shop", {
        hostnames: ["shop.test"],
        rules: [
          { name: "cart", matches: [prefix("/cart")], backendRefs: [ref("api")] },
          { matches: [prefix("/")], backendRefs: [ref("web")] },
        ],
      }),
      httpRoute("orphan", { hostnames: ["orphan.test"], rules: [{ backendRefs: [ref("nowhere")] }] }),
    ),
  }),
});

let browser: Browser | undefined;
before(async () => {
  if (skip === false) browser = await Browser.launch();
});
after(async () => {
  await browser?.close();
});

/** The text of the requests counter of route default/shop, rule `cart`, as the page shows it. */
const CART_COUNTER = `document.querySelector('tr[data-route="HTTPRoute default/shop"] [data-rule="cart"] .requests')?.textContent`;

test(
  "the dashboard: token, routes and conditions, why not served, a counter that moves",
  { skip },
  async () => {
    const h = harness();
    const b = browser as Browser;
    await b.open(`${h.adminUrl}/?poll=500`);
    // Without the token the page asks for it and shows nothing of the configuration.
    await b.waitFor("the token form", `!document.querySelector('#login').hidden`);
    assert.equal(await b.evaluate<boolean>(`document.body.innerText.includes('shop')`), false);
    await b.evaluate(
      `document.querySelector('#token').value = ${JSON.stringify(TOKEN)}; document.querySelector('#login').requestSubmit(); true`,
    );
    await b.waitFor(
      "the routes",
      `document.querySelector('tr[data-route="HTTPRoute default/shop"]') !== null`,
    );

    const shop = await b.evaluate<string>(
      `document.querySelector('tr[data-route="HTTPRoute default/shop"]').innerText`,
    );
    assert.match(shop, /Gateway default\/gw/);
    assert.match(shop, /Accepted: True/);
    assert.match(shop, /ResolvedRefs: True/);
    // The route whose backend does not exist: the condition and the status's explanation.
    const orphan = await b.evaluate<string>(
      `document.querySelector('tr[data-route="HTTPRoute default/orphan"]').innerText`,
    );
    assert.match(orphan, /ResolvedRefs: False \(BackendNotFound\)/);
    assert.match(orphan, /nowhere/);
    // Gateways and listeners, the data plane.
    const gw = await b.evaluate<string>(`document.querySelector('[data-gateway="default/gw"]').innerText`);
    assert.match(gw, /Programmed: True/);
    assert.match(gw, /\bhttp\b/);
    const dataplane = await b.evaluate<string>(`document.querySelector('#dataplane').innerText`);
    assert.match(dataplane, /HAProxy version\s+2\.\d+/);
    assert.match(dataplane, /Serving generation\s+\d+/);
    assert.ok(!(await b.evaluate<string>(`document.body.innerText`)).includes(TOKEN));

    // Traffic: the page's counter of rule `cart` moves by exactly what was sent.
    const start = Number(
      await b.waitFor<string>(
        "the cart counter",
        `${CART_COUNTER} ?? (document.querySelector('tr[data-route="HTTPRoute default/shop"]') && '0')`,
      ),
    );
    for (let i = 0; i < 7; i++) assert.equal((await h.get("/cart/item", { host: "shop.test" })).status, 200);
    await b.waitFor("the counter to move by 7", `Number(${CART_COUNTER}) === ${start + 7}`);
    // Under steady traffic the rates are numbers (two samples apart), and 5xx answers show as errors.
    let running = true;
    const traffic = (async () => {
      for (let i = 0; running; i++) {
        await h.get("/cart/item", {
          host: "shop.test",
          headers: i % 5 === 0 ? { "x-echo-status": "503" } : {},
        });
        await h.get("/", { host: "shop.test" });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const cart = `document.querySelector('tr[data-route="HTTPRoute default/shop"] [data-rule="cart"]').innerText`;
      const rate = (unit: string): string => `Number(/([0-9.]+) ${unit}/.exec(${cart})?.[1] ?? 0) > 0`;
      await b.waitFor("a request rate above 0", rate("req\\/s"));
      await b.waitFor("an error rate above 0", rate("5xx\\/s"));
    } finally {
      running = false;
      await traffic;
    }
    const png = await b.screenshot();
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    if (process.env["GATEHOUSE_UPDATE_SCREENSHOT"] === "1")
      await writeFile(join(import.meta.dirname, "..", "..", "docs", "dashboard.png"), png);
  },
);

test(
  "the dashboard's files hold no configuration, and the API behind them needs the token",
  { skip },
  async () => {
    const h = harness();
    for (const path of ["/", "/ui/app.js", "/ui/app.css"]) {
      const res = await fetch(`${h.adminUrl}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      const text = await res.text();
      assert.ok(!text.includes("shop.test") && !text.includes(TOKEN), path);
    }
    assert.equal((await fetch(`${h.adminUrl}/status`)).status, 401);
    assert.equal((await fetch(`${h.adminUrl}/metrics`)).status, 401);
    const status = await fetch(`${h.adminUrl}/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(status.status, 200);
    assert.match(((await status.json()) as { version: string }).version, /^\d+\.\d+\.\d+/);
  },
);
