import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ANY_HOSTNAME,
  compareHostnameSpecificity,
  hostnameMatches,
  intersectHostnames,
  isWildcardHostname,
  listenerHostnamesOverlap,
} from "./hostname.ts";

void describe("hostnameMatches", () => {
  // Spec: "Hostnames that are prefixed with a wildcard label (`*.`) are interpreted as a suffix match.
  // That means that a match for `*.example.com` would match both `test.example.com`, and
  // `foo.test.example.com`, but not `example.com`."
  const rows: [pattern: string, host: string, expected: boolean, why: string][] = [
    ["*.example.com", "test.example.com", true, "suffix match: would match `test.example.com`"],
    ["*.example.com", "foo.test.example.com", true, "suffix match: would match `foo.test.example.com`"],
    ["*.example.com", "example.com", false, "suffix match: but not `example.com`"],
    ["*.example.com", "test.example.net", false, "`test.example.net` would not match"],
    ["*.example.com", "badexample.com", false, "the wildcard must cover a whole label"],
    ["*.example.com", ".example.com", false, "an empty label is not a label"],
    ["test.example.com", "test.example.com", true, "exact comparison"],
    ["test.example.com", "foo.test.example.com", false, "exact hostnames are not suffix matches"],
    ["example.com", "test.example.com", false, "exact hostnames are not suffix matches"],
    ["Test.Example.COM", "test.example.com", true, "case-insensitive"],
    ["*.EXAMPLE.com", "Foo.example.COM", true, "case-insensitive wildcard"],
    ["*", "anything.example.org", true, "Listener: 'When unspecified, all hostnames are matched.'"],
    ["", "anything.example.org", true, "empty pattern means unspecified"],
    ["test.example.com", "test.example.com:8443", true, "'MUST ignore any port value' in the Host header"],
    ["*.example.com", "a.example.com:80", true, "port ignored for wildcard matches too"],
    ["*.example.com", "*.foo.example.com", true, "subsumption: a narrower wildcard is covered"],
    ["*.example.com", "*.example.com", true, "a wildcard covers itself"],
    ["*.foo.example.com", "*.example.com", false, "a broader wildcard is not covered"],
    ["*.example.com", "*", false, "`*` is not covered by a wildcard"],
    ["test.example.com", "*.example.com", false, "a wildcard is not covered by an exact name"],
  ];
  for (const [pattern, host, expected, why] of rows) {
    void it(`${JSON.stringify(pattern)} vs ${JSON.stringify(host)} -> ${expected} (${why})`, () => {
      assert.equal(hostnameMatches(pattern, host), expected);
    });
  }
});

void describe("isWildcardHostname", () => {
  void it("recognises only `*.<labels>`", () => {
    assert.equal(isWildcardHostname("*.example.com"), true);
    assert.equal(isWildcardHostname("*"), false);
    assert.equal(isWildcardHostname("*."), false);
    assert.equal(isWildcardHostname("example.com"), false);
  });
});

void describe("listenerHostnamesOverlap", () => {
  const rows: [a: string | undefined, b: string | undefined, expected: boolean][] = [
    [undefined, "foo.example.com", true],
    [undefined, undefined, true],
    ["*.example.com", "foo.example.com", true],
    ["foo.example.com", "*.example.com", true],
    ["*.example.com", "*.foo.example.com", true],
    ["*.example.com", "*.example.net", false],
    ["foo.example.com", "bar.example.com", false],
    ["*.example.com", "example.com", false],
  ];
  for (const [a, b, expected] of rows) {
    void it(`${String(a)} / ${String(b)} -> ${expected}`, () => {
      assert.equal(listenerHostnamesOverlap(a, b), expected);
    });
  }
});

void describe("intersectHostnames", () => {
  const rows: [listener: string | undefined, route: string[], expected: string[], why: string][] = [
    // Listener: "When unspecified, all hostnames are matched."
    [undefined, [], [ANY_HOSTNAME], "neither specifies a hostname: any host"],
    [undefined, ["foo.example.com", "*.bar.com"], ["foo.example.com", "*.bar.com"], "listener absent"],
    ["", ["foo.example.com"], ["foo.example.com"], "empty listener hostname means unspecified"],
    ["*", [], [ANY_HOSTNAME], "`*` listener and no route hostnames"],
    // "A Listener with `test.example.com` as the hostname matches HTTPRoutes that have either not
    // specified any hostnames, or have specified at least one of `test.example.com` or `*.example.com`."
    ["test.example.com", [], ["test.example.com"], "route has no hostnames: listener's"],
    ["test.example.com", ["test.example.com"], ["test.example.com"], "exact == exact"],
    ["test.example.com", ["*.example.com"], ["test.example.com"], "route wildcard covers exact listener"],
    ["test.example.com", ["other.example.com"], [], "exact != exact: NoMatchingListenerHostname"],
    ["test.example.com", ["*.test.example.com"], [], "`*.test.example.com` does not cover its apex"],
    // "A Listener with `*.example.com` as the hostname matches HTTPRoutes that have ... specified at
    // least one hostname that matches the Listener hostname. For example, `*.example.com`,
    // `test.example.com`, and `foo.test.example.com` would all match. On the other hand, `example.com`
    // and `test.example.net` would not match."
    ["*.example.com", [], ["*.example.com"], "route has no hostnames: listener wildcard"],
    ["*.example.com", ["*.example.com"], ["*.example.com"], "`*.example.com` would match"],
    ["*.example.com", ["test.example.com"], ["test.example.com"], "`test.example.com` would match"],
    ["*.example.com", ["foo.test.example.com"], ["foo.test.example.com"], "`foo.test.example.com` matches"],
    ["*.example.com", ["example.com"], [], "`example.com` would not match"],
    ["*.example.com", ["test.example.net"], [], "`test.example.net` would not match"],
    // "if a Listener specified `*.example.com`, and the HTTPRoute specified `test.example.com` and
    // `test.example.net`, `test.example.net` must not be considered for a match."
    ["*.example.com", ["test.example.com", "test.example.net"], ["test.example.com"], "ignore non-matching"],
    // Both wildcards: the more specific one.
    ["*.example.com", ["*.foo.example.com"], ["*.foo.example.com"], "route wildcard narrower"],
    ["*.foo.example.com", ["*.example.com"], ["*.foo.example.com"], "listener wildcard narrower"],
    ["*.foo.example.com", ["*.bar.example.com"], [], "disjoint wildcards"],
    [
      "foo.example.com",
      ["*.example.com", "foo.example.com", "*.com"],
      ["foo.example.com"],
      "deduplicated when several route hostnames narrow to the listener's",
    ],
    [
      "*.example.com",
      ["b.example.com", "*.x.example.com", "a.example.com", "b.example.com"],
      ["b.example.com", "*.x.example.com", "a.example.com"],
      "first-occurrence order, duplicates removed",
    ],
    ["*.Example.com", ["FOO.example.COM"], ["foo.example.com"], "case-insensitive, lower-cased result"],
  ];
  for (const [listener, route, expected, why] of rows) {
    void it(`listener ${String(listener)} ∩ [${route.join(", ")}] = [${expected.join(", ")}] (${why})`, () => {
      assert.deepEqual(intersectHostnames(listener, route), expected);
    });
  }
});

void describe("compareHostnameSpecificity", () => {
  // "precedence must be given to rules from the HTTPRoute with the largest number of: Characters in a
  // matching non-wildcard hostname. Characters in a matching hostname."
  const sorted = (xs: string[]): string[] => [...xs].sort(compareHostnameSpecificity);

  void it("exact hostnames before wildcards, `*` last", () => {
    assert.deepEqual(sorted(["*", "*.example.com", "foo.example.com"]), [
      "foo.example.com",
      "*.example.com",
      "*",
    ]);
  });
  void it("a short exact hostname still beats a long wildcard (non-wildcard characters count first)", () => {
    assert.ok(compareHostnameSpecificity("a.io", "*.very.long.example.com") < 0);
  });
  void it("among wildcards, the longer (more specific) one first", () => {
    assert.deepEqual(sorted(["*.example.com", "*.a.b.example.com", "*.b.example.com"]), [
      "*.a.b.example.com",
      "*.b.example.com",
      "*.example.com",
    ]);
  });
  void it("among exact hostnames, more characters first, then alphabetical", () => {
    assert.deepEqual(sorted(["b.example.com", "www.example.com", "a.example.com"]), [
      "www.example.com",
      "a.example.com",
      "b.example.com",
    ]);
  });
  void it("equal length: more labels first", () => {
    assert.ok(compareHostnameSpecificity("a.b.cd", "abc.de") < 0);
  });
  void it("is 0 only for identical strings and antisymmetric", () => {
    const xs = ["*", "*.example.com", "*.EXAMPLE.com", "foo.example.com", "bar.example.com", "x.y"];
    for (const a of xs) {
      for (const b of xs) {
        const ab = compareHostnameSpecificity(a, b);
        assert.equal(ab === 0, a === b, `${a} vs ${b}`);
        assert.equal(Math.sign(ab) + Math.sign(compareHostnameSpecificity(b, a)), 0);
      }
    }
  });
});
