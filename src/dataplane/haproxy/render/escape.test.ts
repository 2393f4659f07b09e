import assert from "node:assert/strict";
import { test } from "node:test";
import { arg, comment, lf, regexLiteral, word } from "./escape.ts";
import { regexIssue } from "./syntax.ts";
import { tokenize } from "./testutil.ts";

const HOSTILE = [
  "plain",
  "two  spaces and\ttab",
  `"double" 'single' \`back\``,
  "it's",
  "'",
  "''",
  "'leading and trailing'",
  "${HOME}",
  "$HOME",
  '"$HOME"',
  "'${HOME}'",
  "\\",
  "\\\\ \\' \\\" \\n \\x41",
  "# not a comment",
  "a#b",
  "%[src] %{+Q}o %% 100%",
  "}",
  "{ always_true }",
  "if { always_true }",
  "-m",
  "--",
  "unicode é ✓",
  "x".repeat(4096),
];

test("word(): the tokenizer gives back exactly the string, as one word", () => {
  for (const s of HOSTILE) {
    const { directives, expansions } = tokenize(`section\n  directive ${word(s)} end\n`);
    assert.equal(directives.length, 1, s);
    assert.deepEqual(directives[0]?.words, ["directive", s, "end"], s);
    assert.deepEqual(expansions, [], `no $-expansion for ${s}`);
  }
});

test("word(): plain strings stay bare, others are strongly quoted", () => {
  assert.equal(word("/var/lib/gatehouse/maps/a.map"), "/var/lib/gatehouse/maps/a.map");
  assert.equal(word("var(txn.x),concat(/0)"), "var(txn.x),concat(/0)");
  assert.equal(word("a b"), "'a b'");
  assert.equal(word("it's"), "'it'\\''s'");
  assert.equal(word("'"), "\\'");
  assert.equal(word("$HOME"), "'$HOME'");
});

test("word(): refuses what no quoting can carry", () => {
  for (const s of ["", "a\nb", "a\rb", "a\0b"]) assert.throws(() => word(s), s);
});

test("arg(): keyword arguments are bare when plain, weak-quoted otherwise", () => {
  assert.equal(arg("x-foo"), "x-foo");
  assert.equal(arg("x'y"), `"x'y"`);
  assert.equal(arg('a"b\\c'), `"a\\"b\\\\c"`);
  assert.equal(arg("a,b)c"), `"a,b)c"`);
  // Inside a configuration word, the argument survives layer 1 unchanged.
  const { directives } = tokenize(`s\n  d ${word(`req.fhdr(${arg("x'it's\"")})`)}\n`);
  assert.deepEqual(directives[0]?.words, ["d", `req.fhdr("x'it's\\"")`]);
});

test("lf(): percent signs are doubled, the empty string is an empty sample", () => {
  assert.equal(lf("100%"), "100%%");
  assert.equal(lf("%[src]"), "%%[src]");
  assert.equal(lf(""), "%[str()]");
  assert.equal(lf("no percent"), "no percent");
});

test("regexLiteral(): matches exactly the literal", () => {
  for (const s of ["/foo", "/a.b", "/it's", "/$HOME", "/(x)|[y]{2}+?*^\\", "/with space", "/tab\there"]) {
    const re = new RegExp(`^${regexLiteral(s)}$`);
    assert.ok(re.test(s), s);
    assert.ok(!re.test(`${s}x`), s);
    assert.doesNotMatch(regexLiteral(s), /\s/, "no blanks (fits a map key)");
  }
  assert.ok(!new RegExp(`^${regexLiteral("/a.b")}$`).test("/axb"));
});

test("regexIssue(): refuses expressions that could escape their wrapper", () => {
  const ok = [
    "/foo/.*",
    "[)]",
    "[^)(]+",
    "\\)",
    "(a|b)+",
    "[[:alpha:]]+",
    "[]a]",
    "(?i)abc",
    "(?:x)",
    "(?<n>a)\\k<n>",
  ];
  for (const re of ok) assert.equal(regexIssue(re), undefined, re);
  const bad: Array<[string, RegExp]> = [
    ["a)|(.*", /unbalanced '\)'/],
    ["(a", /unbalanced '\('/],
    ["a\\", /lone backslash/],
    ["[abc", /unterminated character class/],
    ["(?x) a # c", /extended mode/],
    ["(?ix:a)", /extended mode/],
    ["\\Q)\\E", /\\Q/],
    ["(?#)x", /comment/],
    ["(*UTF)a", /VERB/],
    ["a\nb", /control character/],
    ["", /empty/],
  ];
  for (const [re, message] of bad) assert.match(regexIssue(re) ?? "", message, re);
});

test("comment(): printable ASCII only", () => {
  assert.equal(comment("a\nb\u00e9"), "a?b?");
});
