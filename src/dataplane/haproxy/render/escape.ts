// Escaping for every context a resource string can land in. HAProxy parses a configuration line in
// up to three layers, and each has its own escaping (configuration.txt §2.2, §8.2.6):
//   1. the line tokenizer: words split on blanks; `#` starts a comment; `\` escapes; "..." expands
//      `$VAR`/`${VAR}`; '...' is literal (no escapes at all, so `'` is written as '\'' like a shell);
//   2. keyword arguments inside parentheses (`req.fhdr(<name>)`, `str(<s>)`): same quoting rules
//      again, applied to the word produced by layer 1, with `,` and `)` as delimiters;
//   3. log-format strings (set-header values, redirect locations, return headers): `%` starts a
//      variable or a sample expression, `%%` is a literal percent.
// Strings that cannot be represented (NUL, CR, LF) are rejected before they reach these helpers
// (see syntax.ts); the helpers re-check and throw as a last line of defence.

/** Characters that are emitted without quoting. Everything else gets strong (single) quotes. */
const BARE = /^[A-Za-z0-9_./:@=+,()[\]-]+$/;
const UNREPRESENTABLE = /[\0\n\r]/;
/** Keyword arguments made only of these characters need no layer-2 quoting. */
const ARG_BARE = /^[A-Za-z0-9_./:@=+-]+$/;

/**
 * One configuration word (layer 1) whose value after tokenizing is exactly `s`. Strong quotes: inside
 * them nothing is interpreted (no `$` expansion, no `\`, no `#` comment); a single quote cannot
 * appear inside them, so it is emitted outside as `\'` between quoted segments.
 */
export function word(s: string): string {
  if (s === "") throw new Error("internal: an empty string cannot be a configuration word");
  if (UNREPRESENTABLE.test(s)) throw new Error("internal: NUL/CR/LF cannot be a configuration word");
  if (BARE.test(s)) return s;
  return s
    .split("'")
    .map((segment) => (segment === "" ? "" : `'${segment}'`))
    .join("\\'");
}

/**
 * One keyword argument (layer 2), e.g. the header name in `req.fhdr(...)`: bare when it is made of
 * plain characters, otherwise weak-quoted so `,`, `)`, quotes and blanks belong to the argument
 * (only `\` and `"` are special inside). The expression containing it must itself go through
 * `word()` (a quoted argument contains `"`, so the whole expression ends up strong-quoted).
 */
export function arg(s: string): string {
  if (UNREPRESENTABLE.test(s)) throw new Error("internal: NUL/CR/LF cannot be a keyword argument");
  if (ARG_BARE.test(s)) return s;
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * A literal inside a log-format string (layer 3): `%` doubled. The empty string becomes the empty
 * sample expression `%[str()]` because an empty configuration word would end the argument list.
 * The result must go through `word()`.
 */
export function lf(s: string): string {
  if (s === "") return "%[str()]";
  return s.replaceAll("%", "%%");
}

/** A PCRE literal: metacharacters backslash-escaped, blanks as `\x20`/`\x09` (so it fits a map key). */
export function regexLiteral(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}\s]/g, (c) => {
    if (c === " ") return "\\x20";
    if (c === "\t") return "\\x09";
    return `\\${c}`;
  });
}

/** Text safe inside a `#` comment: printable ASCII only, anything else replaced by `?`. */
export function comment(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}
