import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compareGRPCMatches,
  compareHTTPMatches,
  compareRouteIdentity,
  compareRouteMatches,
  routeIdentityOf,
  type GRPCMatchCandidate,
  type MatchCandidate,
  type PathMatchType,
  type RouteMatchCandidate,
} from "./precedence.ts";

const T0 = "2020-09-08T01:02:03Z";
const T1 = "2020-09-08T01:02:04Z";

const baseHTTP: MatchCandidate = {
  routeCreationTimestamp: T0,
  routeNamespace: "default",
  routeName: "route",
  ruleIndex: 0,
  matchIndex: 0,
  path: { type: "PathPrefix", value: "/" },
  headerCount: 0,
  queryParamCount: 0,
};
const http = (over: Partial<MatchCandidate>): MatchCandidate => ({ ...baseHTTP, ...over });
const exact = (value: string) => ({ path: { type: "Exact" as const, value } });
const prefix = (value: string) => ({ path: { type: "PathPrefix" as const, value } });
const regex = (value: string) => ({ path: { type: "RegularExpression" as const, value } });

const baseGRPC: GRPCMatchCandidate = {
  routeCreationTimestamp: T0,
  routeNamespace: "default",
  routeName: "route",
  ruleIndex: 0,
  matchIndex: 0,
  headerCount: 0,
};
const grpc = (over: Partial<GRPCMatchCandidate>): GRPCMatchCandidate => ({ ...baseGRPC, ...over });

// Spec sentences (GRPCRouteRule/HTTPRouteRule.matches) used as test-name prefixes.
const EXACT = '"Exact" path match';
const PREFIX = '"Prefix" path match with largest number of characters';
const OLDEST = "The oldest Route based on creation timestamp";
const ALPHA = 'The Route appearing first in alphabetical order by "{namespace}/{name}"';
const REGEX = "RegularExpression (implementation-specific; Gatehouse)";
/** A candidate of route `name` created at `ts`. */
const route = (ts: string, name: string) => ({ routeCreationTimestamp: ts, routeName: name });

/** Asserts `first` sorts strictly before `second`, in both argument orders. */
function assertBefore<T>(cmp: (a: T, b: T) => number, first: T, second: T): void {
  assert.ok(cmp(first, second) < 0, "expected first < second");
  assert.ok(cmp(second, first) > 0, "expected second > first");
}

void describe("compareHTTPMatches (HTTPRouteRule.matches precedence)", () => {
  // Each row: spec sentence (or documented implementation choice), the candidate that must win, the loser.
  const rows: [why: string, winner: MatchCandidate, loser: MatchCandidate][] = [
    [`${EXACT}: Exact /foo before PathPrefix /foo`, http(exact("/foo")), http(prefix("/foo"))],
    [`${EXACT}: Exact / before a longer PathPrefix`, http(exact("/")), http(prefix("/very/long"))],
    [
      `${EXACT}: outranks a prefix with more headers`,
      http(exact("/a")),
      http({ ...prefix("/a"), headerCount: 3 }),
    ],
    [`${PREFIX}: /foo/bar before /foo`, http(prefix("/foo/bar")), http(prefix("/foo"))],
    [`${PREFIX}: outranks a method match`, http(prefix("/foo")), http({ ...prefix("/"), method: "GET" })],
    ["Method match: GET / before /", http({ method: "GET" }), http({})],
    ["Method match: outranks header count", http({ method: "GET" }), http({ headerCount: 3 })],
    [
      "Method match: an empty method string counts as no method",
      http({ method: "GET" }),
      http({ method: "" }),
    ],
    [
      "Method match: also breaks ties between equal Exact paths",
      http({ ...exact("/a"), method: "GET" }),
      http(exact("/a")),
    ],
    ["Largest number of header matches: 2 before 1", http({ headerCount: 2 }), http({ headerCount: 1 })],
    [
      "Largest number of header matches: outranks query param matches",
      http({ headerCount: 1 }),
      http({ queryParamCount: 5 }),
    ],
    [
      "Largest number of query param matches: 2 before 1",
      http({ queryParamCount: 2 }),
      http({ queryParamCount: 1 }),
    ],
    [`${OLDEST}: 01:02:03 before 01:02:04`, http(route(T0, "zzz")), http(route(T1, "aaa"))],
    [
      `${OLDEST}: outranks rule order`,
      http({ ...route(T0, "b"), ruleIndex: 5 }),
      http({ ...route(T1, "a"), ruleIndex: 0 }),
    ],
    [
      `${OLDEST}: offsets are honoured (02:02:03+02:00 is 00:02:03Z)`,
      http(route("2020-09-08T02:02:03+02:00", "b")),
      http(route(T0, "a")),
    ],
    [
      `${OLDEST}: fractional seconds are honoured`,
      http(route(T0, "b")),
      http(route("2020-09-08T01:02:03.500Z", "a")),
    ],
    [
      `${OLDEST}: an unknown ("") timestamp sorts after any known one (Gatehouse choice)`,
      http(route(T1, "z")),
      http(route("", "a")),
    ],
    [
      `${ALPHA}: a/z before b/a`,
      http({ routeNamespace: "a", routeName: "z" }),
      http({ routeNamespace: "b", routeName: "a" }),
    ],
    [`${ALPHA}: default/a before default/b`, http({ routeName: "a" }), http({ routeName: "b" })],
    [
      'alphabetical order by "{namespace}/{name}" compares the joined string: a-b/x before a/x',
      http({ routeNamespace: "a-b", routeName: "x" }),
      http({ routeNamespace: "a", routeName: "x" }),
    ],
    [
      "FIRST matching rule (in list order): rule 0 before rule 1",
      http({ ruleIndex: 0 }),
      http({ ruleIndex: 1 }),
    ],
    ["FIRST matching rule: then match list order", http({ matchIndex: 0 }), http({ matchIndex: 1 })],
    [
      "FIRST matching rule only applies once the criteria tie: rule 1 Exact before rule 0 prefix",
      http({ ...exact("/a"), ruleIndex: 1 }),
      http({ ...prefix("/a"), ruleIndex: 0 }),
    ],
    [`${REGEX}: Exact before RegularExpression`, http(exact("/a")), http(regex("/a.*"))],
    [
      `${REGEX}: before any PathPrefix, even a longer one`,
      http(regex("/a.*")),
      http(prefix("/a/very/long/prefix")),
    ],
    [`${REGEX}: longer pattern first, like prefixes`, http(regex("/api/v[0-9]+/.*")), http(regex("/api/.*"))],
    [
      `${REGEX}: equal-length patterns fall through to Method match`,
      http({ ...regex("/a.*"), method: "GET" }),
      http(regex("/.*b")),
    ],
  ];
  for (const [why, winner, loser] of rows) {
    void it(why, () => assertBefore(compareHTTPMatches, winner, loser));
  }

  void it("sorts a realistic virtual host", () => {
    const named = (id: string, c: MatchCandidate) => ({ id, c });
    const input = [
      named("catch-all", http({ routeName: "web" })),
      named("api-prefix", http({ ...prefix("/api"), routeName: "api" })),
      named("api-v2-header", http({ ...prefix("/api"), routeName: "api", ruleIndex: 1, headerCount: 1 })),
      named("health", http({ ...exact("/healthz"), routeName: "ops" })),
      named("users-regex", http({ ...regex("/api/users/[0-9]+"), routeName: "api", ruleIndex: 2 })),
      named("post-api", http({ ...prefix("/api"), routeName: "api", ruleIndex: 3, method: "POST" })),
    ];
    const order = [...input].sort((x, y) => compareHTTPMatches(x.c, y.c)).map((x) => x.id);
    assert.deepEqual(order, [
      "health",
      "users-regex",
      "post-api",
      "api-v2-header",
      "api-prefix",
      "catch-all",
    ]);
  });
});

void describe("compareGRPCMatches (GRPCRouteRule.matches precedence)", () => {
  const rows: [why: string, winner: GRPCMatchCandidate, loser: GRPCMatchCandidate][] = [
    [
      "Characters in a matching service: longer service first",
      grpc({ service: "helloworld.v2.Greeter" }),
      grpc({ service: "helloworld.Greeter" }),
    ],
    [
      "Characters in a matching service: any service before none",
      grpc({ service: "a.B" }),
      grpc({ method: "Get" }),
    ],
    [
      "Characters in a matching service: outranks method characters",
      grpc({ service: "x.LongService", method: "A" }),
      grpc({ service: "x.S", method: "LongMethodName" }),
    ],
    [
      "Characters in a matching method: service+method before service only",
      grpc({ service: "helloworld.Greeter", method: "SayHello" }),
      grpc({ service: "helloworld.Greeter" }),
    ],
    [
      "Characters in a matching method: longer method first",
      grpc({ service: "s.S", method: "SayHelloAgain" }),
      grpc({ service: "s.S", method: "SayHello" }),
    ],
    [
      "Characters in a matching method: outranks header matches",
      grpc({ service: "s.S", method: "M" }),
      grpc({ service: "s.S", headerCount: 4 }),
    ],
    [
      `${REGEX}: Exact service before a regex service, even a longer one`,
      grpc({ service: "foo.Bar" }),
      grpc({ service: "foo\\.Ba[rz]", serviceType: "RegularExpression" }),
    ],
    [
      `${REGEX}: a regex service before no service`,
      grpc({ service: ".*", serviceType: "RegularExpression" }),
      grpc({ method: "VeryLongMethodName" }),
    ],
    [
      `${REGEX}: longer regex service first`,
      grpc({ service: "foo\\..*", serviceType: "RegularExpression" }),
      grpc({ service: ".*", serviceType: "RegularExpression" }),
    ],
    [
      `${REGEX}: Exact method before a regex method`,
      grpc({ service: "s.S", method: "Get" }),
      grpc({ service: "s.S", method: "Get.*", methodType: "RegularExpression" }),
    ],
    [
      "Type defaults to Exact: an untyped service before a regex one",
      grpc({ service: "a.B" }),
      grpc({ service: "a.B", serviceType: "RegularExpression" }),
    ],
    ["Header matches: 2 before 1", grpc({ headerCount: 2 }), grpc({ headerCount: 1 })],
    [OLDEST, grpc(route(T0, "z")), grpc(route(T1, "a"))],
    [
      `${OLDEST}: an unknown ("") timestamp sorts last (Gatehouse choice)`,
      grpc({ routeCreationTimestamp: T1 }),
      grpc({ routeCreationTimestamp: "", routeNamespace: "a" }),
    ],
    [
      ALPHA,
      grpc({ routeNamespace: "apps", routeName: "b" }),
      grpc({ routeNamespace: "default", routeName: "a" }),
    ],
    ["the first matching rule meeting the above criteria", grpc({ ruleIndex: 0 }), grpc({ ruleIndex: 1 })],
    ["then match list order", grpc({ ruleIndex: 2, matchIndex: 0 }), grpc({ ruleIndex: 2, matchIndex: 1 })],
  ];
  for (const [why, winner, loser] of rows) {
    void it(why, () => assertBefore(compareGRPCMatches, winner, loser));
  }
});

void describe("compareRouteIdentity", () => {
  void it("is 0 only for the same identity", () => {
    const a = { routeCreationTimestamp: T0, routeNamespace: "ns", routeName: "r" };
    assert.equal(compareRouteIdentity(a, { ...a }), 0);
    // Equal instants written differently still compare unequal (deterministically).
    assert.notEqual(
      compareRouteIdentity(a, { ...a, routeCreationTimestamp: "2020-09-08T03:02:03+02:00" }),
      0,
    );
  });
});

// ---- Property tests: both comparators are total orders. ----

const timestampArb = fc.constantFrom("", T0, T1, "2020-09-08T03:02:03+02:00", "not-a-time");
const identityArb = {
  routeCreationTimestamp: timestampArb,
  routeNamespace: fc.constantFrom("a", "a-b", "default"),
  routeName: fc.constantFrom("x", "y", "b/c"),
  ruleIndex: fc.nat(2),
  matchIndex: fc.nat(2),
};
const optionalString = (...values: string[]) => fc.option(fc.constantFrom(...values), { nil: undefined });

const httpArb: fc.Arbitrary<MatchCandidate> = fc
  .record({
    ...identityArb,
    pathType: fc.constantFrom<PathMatchType>("Exact", "PathPrefix", "RegularExpression"),
    pathValue: fc.constantFrom("/", "/a", "/b", "/ab", "/a/b"),
    method: optionalString("GET", "POST"),
    headerCount: fc.nat(2),
    queryParamCount: fc.nat(2),
  })
  .map(({ pathType, pathValue, method, ...rest }) => {
    const c: MatchCandidate = { ...rest, path: { type: pathType, value: pathValue } };
    if (method !== undefined) c.method = method;
    return c;
  });

const grpcArb: fc.Arbitrary<GRPCMatchCandidate> = fc
  .record({
    ...identityArb,
    service: optionalString("a.B", "a.C", "a.Bc", "a\\..*"),
    method: optionalString("Get", "Put", "G.*"),
    type: fc.constantFrom("Exact" as const, "RegularExpression" as const),
    headerCount: fc.nat(2),
  })
  .map(({ service, method, type, ...rest }) => {
    const c: GRPCMatchCandidate = { ...rest, serviceType: type, methodType: type };
    if (service !== undefined) c.service = service;
    if (method !== undefined) c.method = method;
    return c;
  });

/**
 * Pairs of candidates that differ in only a few fields (independent pairs rarely collide on all of the
 * spec's criteria, so they would not exercise the final tie-breakers).
 */
function nearCopies<T extends object>(arb: fc.Arbitrary<T>): fc.Arbitrary<[T, T]> {
  return fc.tuple(arb, arb, fc.nat(4)).chain(([a, c, n]) => {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(c)])];
    return fc.shuffledSubarray(keys, { maxLength: n }).map((changed): [T, T] => {
      const b: Record<string, unknown> = { ...(a as Record<string, unknown>) };
      const from = c as Record<string, unknown>;
      for (const k of changed) {
        if (k in from) b[k] = from[k];
        else Reflect.deleteProperty(b, k);
      }
      return [a, b as T];
    });
  });
}

function totalOrderProperties<T extends object>(
  name: string,
  arb: fc.Arbitrary<T>,
  cmp: (a: T, b: T) => number,
  near: fc.Arbitrary<[T, T]> = nearCopies(arb),
): void {
  void describe(`${name} is a total order`, () => {
    void it("is reflexive and antisymmetric; 0 only for equal candidates", () => {
      fc.assert(
        fc.property(fc.oneof(fc.tuple(arb, arb), near), ([a, b]) => {
          assert.equal(cmp(a, a), 0);
          assert.equal(Math.sign(cmp(a, b)) + Math.sign(cmp(b, a)), 0);
          if (cmp(a, b) === 0) assert.deepEqual(a, b);
        }),
        { numRuns: 5000 },
      );
    });
    void it("is transitive", () => {
      fc.assert(
        fc.property(arb, arb, arb, (a, b, c) => {
          const [x, y, z] = [a, b, c].sort(cmp) as [T, T, T];
          assert.ok(cmp(x, y) <= 0 && cmp(y, z) <= 0);
          assert.ok(cmp(x, z) <= 0, "x <= y and y <= z but x > z");
        }),
        { numRuns: 2000 },
      );
    });
    void it("sorting any permutation gives the same result", () => {
      const listAndPermutation = fc
        .array(arb, { maxLength: 12 })
        .chain((xs) =>
          fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length })),
        );
      fc.assert(
        fc.property(listAndPermutation, ([xs, ys]) => {
          assert.deepEqual([...xs].sort(cmp), [...ys].sort(cmp));
        }),
        { numRuns: 500 },
      );
    });
  });
}

const asHTTP = (c: MatchCandidate): RouteMatchCandidate => ({ kind: "HTTPRoute", ...c });
const asGRPC = (c: GRPCMatchCandidate): RouteMatchCandidate => ({ kind: "GRPCRoute", ...c });
const routeMatchArb: fc.Arbitrary<RouteMatchCandidate> = fc.oneof(httpArb.map(asHTTP), grpcArb.map(asGRPC));
/** Near copies within one kind (a field copied from the other kind would make a mixed candidate). */
const routeMatchNear: fc.Arbitrary<[RouteMatchCandidate, RouteMatchCandidate]> = fc.oneof(
  nearCopies(httpArb).map(([a, b]): [RouteMatchCandidate, RouteMatchCandidate] => [asHTTP(a), asHTTP(b)]),
  nearCopies(grpcArb).map(([a, b]): [RouteMatchCandidate, RouteMatchCandidate] => [asGRPC(a), asGRPC(b)]),
);

totalOrderProperties("compareHTTPMatches", httpArb, compareHTTPMatches);
totalOrderProperties("compareGRPCMatches", grpcArb, compareGRPCMatches);
totalOrderProperties("compareRouteMatches", routeMatchArb, compareRouteMatches, routeMatchNear);

void describe("compareRouteMatches (one virtual host's rule list)", () => {
  void it("orders each kind with its own comparator", () => {
    fc.assert(
      fc.property(httpArb, httpArb, (a, b) => {
        const x = compareRouteMatches({ kind: "HTTPRoute", ...a }, { kind: "HTTPRoute", ...b });
        assert.equal(Math.sign(x), Math.sign(compareHTTPMatches(a, b)));
      }),
    );
    fc.assert(
      fc.property(grpcArb, grpcArb, (a, b) => {
        const x = compareRouteMatches({ kind: "GRPCRoute", ...a }, { kind: "GRPCRoute", ...b });
        assert.equal(Math.sign(x), Math.sign(compareGRPCMatches(a, b)));
      }),
    );
  });

  void it("puts every GRPCRoute entry before every HTTPRoute entry (documented choice)", () => {
    fc.assert(
      fc.property(httpArb, grpcArb, (h, g) => {
        assertBefore(compareRouteMatches, { kind: "GRPCRoute", ...g }, { kind: "HTTPRoute", ...h });
      }),
    );
  });
});

void describe("routeIdentityOf", () => {
  void it("defaults the namespace and an unknown creation timestamp", () => {
    assert.deepEqual(routeIdentityOf({ metadata: { name: "r" } }), {
      routeCreationTimestamp: "",
      routeNamespace: "default",
      routeName: "r",
    });
    assert.deepEqual(routeIdentityOf({ metadata: { name: "r", namespace: "ns", creationTimestamp: T0 } }), {
      routeCreationTimestamp: T0,
      routeNamespace: "ns",
      routeName: "r",
    });
  });
});

void describe("compareHTTPMatches respects the path-type order in any sorted list", () => {
  void it("Exact, then RegularExpression, then PathPrefix", () => {
    const rank = { Exact: 0, RegularExpression: 1, PathPrefix: 2 } as const;
    fc.assert(
      fc.property(fc.array(httpArb), (xs) => {
        const ranks = [...xs].sort(compareHTTPMatches).map((c) => rank[c.path.type]);
        assert.deepEqual(
          ranks,
          [...ranks].sort((p, q) => p - q),
        );
      }),
    );
  });
});
