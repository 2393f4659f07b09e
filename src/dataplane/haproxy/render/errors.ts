// Typed render failures. The renderer never emits something it cannot express safely: it reports
// every such element as a RenderIssue (IR path + subject + reason) and `render` throws a RenderError
// carrying all of them, so the caller can mark the offending objects unsupported and try again.
import { GatehouseError } from "../../../errors.ts";

export interface RenderIssue {
  /** Path of the offending field in the IR (or `options.<field>`), e.g. `gateways[0].listeners[1].virtualHosts[0].rules[2].filters[0].headers.set[0].value`. */
  path: string;
  /** The IR element it belongs to: a rule id, listener id, backend id, route `ns/name`, or `options`. */
  subject: string;
  /** What cannot be rendered and why. */
  message: string;
}

export function formatIssue(issue: RenderIssue): string {
  return `${issue.subject}: ${issue.path}: ${issue.message}`;
}

/** The IR (or the options) contains something HAProxy 2.6 cannot express, or cannot express safely. */
export class RenderError extends GatehouseError {
  readonly issues: readonly RenderIssue[];

  constructor(issues: readonly RenderIssue[]) {
    const first = issues[0];
    const head = first === undefined ? "cannot render" : formatIssue(first);
    super(issues.length > 1 ? `${head} (and ${issues.length - 1} more)` : head);
    this.issues = issues;
  }

  /** The first issue's IR path (convenience for single-issue errors). */
  get path(): string {
    return this.issues[0]?.path ?? "";
  }

  /** The first issue's subject (rule id, listener id, backend id, ...). */
  get subject(): string {
    return this.issues[0]?.subject ?? "";
  }
}

/** Throws a single-issue RenderError: used by the escaping helpers as a last line of defence. */
export function fail(path: string, subject: string, message: string): never {
  throw new RenderError([{ path, subject, message }]);
}
