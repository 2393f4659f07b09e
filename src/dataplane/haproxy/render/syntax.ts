// Syntax checks for resource strings, shared by the IR checker (check.ts) and the renderers. Each
// returns a problem description, or undefined when the string is acceptable in its context.

/** RFC 9110 `token` (header names, methods, cookie names, query parameter names). */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Lowercase DNS name, optionally with a leading `*.` wildcard label. */
export const HOSTNAME = /^(?:\*\.)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
/** Characters Gateway API allows in Exact/PathPrefix paths and path modifier values. */
export const PATH = /^\/(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})*$/;
/** Longest resource string we put in a configuration line or map file. */
export const MAX_VALUE_LENGTH = 16_384;

/** NUL, CR, LF and other control characters (HTAB allowed only where `allowTab`). */
export function controlIssue(s: string, allowTab = false): string | undefined {
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if ((code < 0x20 && !(allowTab && code === 0x09)) || code === 0x7f) {
      return `contains the control character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
    }
  }
  if (s.length > MAX_VALUE_LENGTH) return `is longer than ${MAX_VALUE_LENGTH} characters`;
  return undefined;
}

/** A header field value: printable text and HTAB, no leading/trailing blanks (they never match). */
export function headerValueIssue(s: string): string | undefined {
  return controlIssue(s, true);
}

export function tokenIssue(s: string, what: string): string | undefined {
  return TOKEN.test(s) ? undefined : `${JSON.stringify(s)} is not a valid ${what} (RFC 9110 token)`;
}

export function hostnameIssue(s: string, allowWildcard: boolean): string | undefined {
  if (!HOSTNAME.test(s) || s.length > 253) return `${JSON.stringify(s)} is not a lowercase DNS hostname`;
  if (!allowWildcard && s.startsWith("*.")) return `${JSON.stringify(s)}: a wildcard is not allowed here`;
  return undefined;
}

export function pathIssue(s: string): string | undefined {
  return PATH.test(s) && s.length <= MAX_VALUE_LENGTH
    ? undefined
    : `${JSON.stringify(s)} is not a valid path (must start with "/" and use only RFC 3986 path characters)`;
}

/** A string usable as (part of) a map file key: no blanks or control characters. */
export function mapKeySafe(s: string): boolean {
  return s !== "" && controlIssue(s) === undefined && !/\s/.test(s);
}

/**
 * Structural check of a user regular expression that the renderer wraps as `^(?:<re>)$` (PCRE2):
 * parentheses must balance so the expression cannot close the wrapper group (and thereby escape the
 * anchoring or the virtual-host prefix of a map key), and constructs that change how the rest of the
 * pattern is parsed are refused: extended mode `(?x)` (its `#` comments would swallow the wrapper),
 * `\Q...\E` quoting, `(?#...)` comments and `(*VERB)` start-of-pattern options.
 */
export function regexIssue(re: string): string | undefined {
  const control = controlIssue(re);
  if (control !== undefined) return control;
  if (re === "") return "is empty";
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === "\\") {
      const next = re[i + 1];
      if (next === undefined) return "ends with a lone backslash";
      if (next === "Q" || next === "E") return "uses \\Q...\\E quoting, which is not supported";
      i++;
      continue;
    }
    if (inClass) {
      if (c === "[" && re[i + 1] === ":") {
        const end = re.indexOf(":]", i + 2);
        if (end < 0) return "has an unterminated POSIX character class";
        i = end + 1;
      } else if (c === "]") {
        inClass = false;
      }
      continue;
    }
    if (c === "[") {
      inClass = true;
      if (re[i + 1] === "^") i++;
      if (re[i + 1] === "]") i++;
      continue;
    }
    if (c === "(") {
      if (re.startsWith("(?#", i)) return "uses a (?#...) comment, which is not supported";
      if (re[i + 1] === "*") return "uses a (*VERB) option, which is not supported";
      const flags = /^\(\?\^?([A-Za-z-]*)[:)]/.exec(re.slice(i));
      if (flags?.[1]?.includes("x") === true) return "uses extended mode (?x), which is not supported";
      depth++;
    } else if (c === ")") {
      depth--;
      if (depth < 0) return "has an unbalanced ')'";
    }
  }
  if (inClass) return "has an unterminated character class";
  if (depth !== 0) return "has an unbalanced '('";
  return undefined;
}

/** Splits a Gateway API CORS origin (`*`, `scheme://host[:port]`, host may start with `*.`). */
export function corsOriginIssue(origin: string): string | undefined {
  if (origin === "*") return undefined;
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/(?:\*|(?:\*\.)?[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$/.test(origin)) {
    return `${JSON.stringify(origin)} is not a valid origin (scheme://host[:port], host may start with "*.")`;
  }
  return undefined;
}
