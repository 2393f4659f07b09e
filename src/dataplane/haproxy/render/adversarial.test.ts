// Hostile resource strings in every context: the rendered configuration must pass `haproxy -c`,
// keep exactly the directive/word structure of a benign rendering, and carry the literal value in
// the expected place. Strings no context can carry are refused with a RenderError naming the field.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { IR, IRHTTPRule } from "../../../ir/types.ts";
import { lf } from "./escape.ts";
import { render, RenderError } from "./index.ts";
import {
  gatewayIR,
  GOLDEN_OPTIONS,
  haproxyAvailable,
  haproxyCheck,
  tokenize,
  type Directive,
} from "./testutil.ts";

function ir(rule: Partial<IRHTTPRule>): IR {
  const base: IRHTTPRule = {
    id: "httproute/default/hostile/rule/0/match/0",
    route: { kind: "HTTPRoute", namespace: "default", name: "hostile" },
    ruleIndex: 0,
    matchIndex: 0,
    match: { path: { type: "PathPrefix", value: "/" }, headers: [], queryParams: [] },
    filters: [],
    backends: [{ backend: "service/default/echo/80", weight: 1, filters: [] }],
  };
  return gatewayIR(
    [{ hostname: "*", rules: [{ ...base, ...rule }] }],
    [
      {
        id: "service/default/echo/80",
        source: { kind: "Service", namespace: "default", name: "echo" },
        port: 80,
        protocol: "http",
        endpoints: [{ address: "10.0.0.1", port: 3000 }],
      },
    ],
  );
}

/** Every context a header-like value reaches, in one rule. */
function valueIR(value: string): IR {
  return ir({
    match: {
      path: { type: "PathPrefix", value: "/" },
      headers: [{ type: "Exact", name: "X-Match", value }],
      queryParams: [{ type: "Exact", name: "q", value }],
    },
    filters: [
      {
        type: "RequestHeaderModifier",
        headers: { set: [{ name: "X-Set", value }], add: [{ name: "X-Add", value }], remove: [] },
      },
      { type: "ResponseHeaderModifier", headers: { set: [{ name: "X-Resp", value }], add: [], remove: [] } },
    ],
  });
}

/** Every context a header/cookie name reaches. */
function nameIR(name: string): IR {
  return ir({
    match: {
      path: { type: "PathPrefix", value: "/" },
      headers: [{ type: "Exact", name, value: "v" }],
      queryParams: [{ type: "Exact", name, value: "v" }],
    },
    filters: [
      {
        type: "RequestHeaderModifier",
        headers: { set: [{ name, value: "v" }], add: [{ name, value: "v" }], remove: [name] },
      },
    ],
    sessionPersistence: { type: "Cookie", name, lifetime: "Session" },
  });
}

function regexIR(re: string): IR {
  return ir({
    match: {
      path: { type: "PathPrefix", value: "/" },
      headers: [{ type: "RegularExpression", name: "X-Re", value: re }],
      queryParams: [],
    },
  });
}

const KEYWORD_PAIRS = new Set([
  "http-request",
  "http-response",
  "tcp-request",
  "timeout",
  "option",
  "stats",
  "mode",
]);

/** The directive skeleton: section, word count and keywords (never a resource string or digest). */
function skeleton(directives: readonly Directive[], skipAcls = false): string[] {
  return directives
    .filter((d) => !(skipAcls && d.words[0] === "acl"))
    .map((d) => {
      const w0 = d.words[0] ?? "";
      const w1 = KEYWORD_PAIRS.has(w0) ? (d.words[1] ?? "") : "";
      return `${d.section.replace(/[0-9a-f]{8,}/g, "<digest>")} | ${d.words.length} | ${w0} ${w1}`;
    });
}

function parse(config: string): Directive[] {
  const { directives, expansions } = tokenize(config);
  assert.deepEqual(expansions, [], "no environment variable expansion anywhere");
  return directives;
}

function find(directives: readonly Directive[], ...prefix: string[]): Directive {
  const d = directives.find((x) => prefix.every((p, i) => x.words[i] === p));
  assert.ok(d !== undefined, `no directive ${prefix.join(" ")}`);
  return d;
}

const VALUES = [
  `"double" 'single' \`back\``,
  "it's",
  "'",
  "${HOME}",
  "$HOME",
  '"$HOME"',
  "'${HOME}' \"$HOME\"",
  "\\",
  "\\\\ \\' \\\" \\n \\x41",
  "two  spaces, a\ttab",
  "# not a comment",
  "%[src] %{+Q}o %% 100%",
  "%",
  "}",
  "{ always_true } or }",
  "-m",
  "-- -i",
  "unicode é ✓",
  "x".repeat(4096),
  "",
];

const benignValue = skeleton(parse(render(valueIR("benign"), GOLDEN_OPTIONS).config));

for (const [i, value] of VALUES.entries()) {
  test(`hostile value #${i} ${JSON.stringify(value.slice(0, 40))}: literal, same structure, haproxy -c`, () => {
    const rendered = render(valueIR(value), GOLDEN_OPTIONS);
    const directives = parse(rendered.config);
    // An empty value is matched with `-m len 0` (an empty word would end the pattern list).
    const expected =
      value === "" ? skeleton(parse(render(valueIR("benign"), GOLDEN_OPTIONS).config), true) : benignValue;
    assert.deepEqual(
      skeleton(directives, value === ""),
      expected,
      "no word, directive or section added or removed",
    );
    assert.equal(find(directives, "http-request", "set-header", "X-Set").words[3], lf(value));
    assert.equal(find(directives, "http-request", "add-header", "X-Add").words[3], lf(value));
    assert.equal(find(directives, "http-response", "set-header", "X-Resp").words[3], lf(value));
    const hdr = directives.find((d) => d.words[0] === "acl" && d.words[2] === "req.fhdr(X-Match)");
    const qp = directives.find((d) => d.words[0] === "acl" && d.words[2] === "url_param(q)");
    if (value === "") {
      assert.deepEqual(hdr?.words.slice(3), ["-m", "len", "0"]);
      assert.deepEqual(qp?.words.slice(3), ["-m", "len", "0"]);
    } else {
      assert.deepEqual(hdr?.words.slice(3), ["-m", "str", "--", value]);
      assert.deepEqual(qp?.words.slice(3), ["-m", "str", "--", value]);
    }
    if (haproxyAvailable()) {
      const check = haproxyCheck(valueIR(value));
      assert.ok(check.ok, check.output);
    }
  });
}

const NAMES = ["x-it's", "x-#hash", "x-$HOME", "x-%src%%", "x-`tick`", "x-a|b~c^d", "-dash", "'"];
const benignName = skeleton(parse(render(nameIR("x-benign"), GOLDEN_OPTIONS).config));

for (const name of NAMES) {
  test(`hostile header/cookie name ${JSON.stringify(name)}: literal, same structure, haproxy -c`, () => {
    const directives = parse(render(nameIR(name), GOLDEN_OPTIONS).config);
    assert.deepEqual(skeleton(directives), benignName);
    assert.equal(find(directives, "http-request", "set-header").words[2], name);
    assert.equal(find(directives, "http-request", "add-header").words[2], name);
    assert.equal(find(directives, "http-request", "del-header").words[2], name);
    const quoted = /^[A-Za-z0-9_.:/@=+-]+$/.test(name) ? name : `"${name}"`;
    assert.ok(directives.some((d) => d.words[0] === "acl" && d.words[2] === `req.fhdr(${quoted})`));
    assert.ok(directives.some((d) => d.words[0] === "acl" && d.words[2] === `url_param(${quoted})`));
    // The session cookie: read by name, set as `<name>=` in a log-format string (`%` doubled).
    assert.ok(directives.some((d) => d.words.includes(`req.cook(${quoted}),field(1,.)`)));
    const setCookie = directives.filter(
      (d) => d.words[0] === "http-response" && d.words[1] === "add-header" && d.words[2] === "Set-Cookie",
    );
    assert.equal(setCookie.length, 2);
    for (const d of setCookie)
      assert.ok(d.words[3]?.startsWith(`${name.replaceAll("%", "%%")}=`), d.words[3]);
    if (haproxyAvailable()) {
      const check = haproxyCheck(nameIR(name));
      assert.ok(check.ok, check.output);
    }
  });
}

/** A header session persistence name reaches req.hdr() arguments and http-response set-header. */
function sessionHeaderIR(name: string): IR {
  return ir({
    match: { path: { type: "PathPrefix", value: "/" }, headers: [], queryParams: [] },
    filters: [],
    sessionPersistence: { type: "Header", name, lifetime: "Session", absoluteTimeoutMs: 60_000 },
  });
}

const benignSession = skeleton(parse(render(sessionHeaderIR("x-benign"), GOLDEN_OPTIONS).config));

for (const name of NAMES) {
  test(`hostile session header name ${JSON.stringify(name)}: literal, same structure, haproxy -c`, () => {
    const directives = parse(render(sessionHeaderIR(name), GOLDEN_OPTIONS).config);
    assert.deepEqual(skeleton(directives), benignSession);
    const set = directives.filter((d) => d.words[0] === "http-response" && d.words[1] === "set-header");
    assert.equal(set.length, 2);
    for (const d of set) assert.equal(d.words[2], name);
    const quoted = /^[A-Za-z0-9_.:/@=+-]+$/.test(name) ? name : `"${name}"`;
    assert.ok(directives.some((d) => d.words.includes(`req.hdr(${quoted}),field(1,.)`)));
    if (haproxyAvailable()) {
      const check = haproxyCheck(sessionHeaderIR(name));
      assert.ok(check.ok, check.output);
    }
  });
}

const REGEXES = [
  "'[^']*'",
  "\\$HOME|\\$\\{HOME\\}",
  "#.*",
  "%\\[src\\]",
  '"\\$HOME"',
  "a\\\\b",
  "\\}",
  "[)(]+",
  "(it's|x)+ y",
];
const benignRegex = skeleton(parse(render(regexIR("benign"), GOLDEN_OPTIONS).config));

for (const re of REGEXES) {
  test(`hostile regex ${JSON.stringify(re)}: anchored literal pattern, same structure, haproxy -c`, () => {
    const directives = parse(render(regexIR(re), GOLDEN_OPTIONS).config);
    assert.deepEqual(skeleton(directives), benignRegex);
    const acl = directives.find((d) => d.words[0] === "acl" && d.words[2] === "req.fhdr(X-Re)");
    assert.deepEqual(acl?.words.slice(3), ["-m", "reg", "--", `^(?:${re})$`]);
    if (haproxyAvailable()) {
      const check = haproxyCheck(regexIR(re));
      assert.ok(check.ok, check.output);
    }
  });
}

test("path-only rules with hostile (but valid) paths become map keys, not configuration", () => {
  const path = "/it's/$HOME/(x)*+,;=:@!&%41";
  const rendered = render(
    ir({ match: { path: { type: "Exact", value: path }, headers: [], queryParams: [] } }),
    GOLDEN_OPTIONS,
  );
  assert.ok(!rendered.config.includes("$HOME"), "the path is not in haproxy.cfg");
  const map = rendered.files["maps/routes-00-exact.map"] ?? "";
  const [key, value, ...rest] = map.trim().split(" ");
  assert.match(key ?? "", /^v[0-9a-f]{12}#/);
  assert.equal(key?.slice(key.indexOf("#") + 1), path);
  assert.match(value ?? "", /^r[0-9a-f]{12}$/);
  assert.deepEqual(rest, []);
});

test("a path with a blank cannot be a map key: it becomes an ACL line", () => {
  const rendered = render(
    ir({ match: { path: { type: "RegularExpression", value: "/a b/.*" }, headers: [], queryParams: [] } }),
    GOLDEN_OPTIONS,
  );
  assert.equal(rendered.files["maps/routes-00-regex.map"], undefined);
  const acl = parse(rendered.config).find((d) => d.words[0] === "acl");
  assert.deepEqual(acl?.words.slice(2), ["path", "-m", "reg", "--", "^(?:/a b/.*)$"]);
});

test("values no quoting can carry are refused with the field named", () => {
  for (const bad of ["a\nb", "a\rb", "a\0b", "a\u0001b", "a\u007fb"]) {
    assert.throws(
      () => render(valueIR(bad), GOLDEN_OPTIONS),
      (e: unknown) => {
        assert.ok(e instanceof RenderError);
        const paths = e.issues.map((x) => x.path);
        assert.ok(
          paths.includes("gateways[0].listeners[0].virtualHosts[0].rules[0].match.headers[0].value"),
          paths.join(),
        );
        assert.ok(
          paths.includes("gateways[0].listeners[0].virtualHosts[0].rules[0].filters[0].headers.set[0].value"),
          paths.join(),
        );
        assert.ok(
          paths.includes("gateways[0].listeners[0].virtualHosts[0].rules[0].filters[1].headers.set[0].value"),
          paths.join(),
        );
        assert.ok(e.issues.every((x) => x.subject === "httproute/default/hostile/rule/0/match/0"));
        return true;
      },
    );
  }
});

test("names that are not tokens are refused", () => {
  for (const bad of ["a b", 'a"b', "a,b", "a(b)", "a:b", "", "a\nb"]) {
    assert.throws(() => render(nameIR(bad), GOLDEN_OPTIONS), RenderError, JSON.stringify(bad));
  }
});
