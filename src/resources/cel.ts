// CEL support for `x-kubernetes-validations`, mimicking the kube-apiserver's CRD validation.
//
// Engine: @bufbuild/cel (cel-spec conformance tested, RE2 regular expressions like cel-go). On top
// of the standard library and the strings extension we register the Kubernetes library functions
// used by the Gateway API CRDs (`isIP`). Rules are compiled lazily and cached by expression text.
// A rule that cannot be compiled (syntax error, unknown function, transition rule) or whose
// evaluation errors is skipped — never turned into a validation error — and recorded for
// `coverageOf()` so the coverage can be reported honestly.
import { isIP as nodeIsIP } from "node:net";
import { celEnv, celFunc, CelScalar, isCelError, parse, plan } from "@bufbuild/cel";
import type { CelInput, CelResult } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import { RE2JS } from "@bufbuild/re2";
import { compileFast, FALLBACK } from "./cel-compile.ts";
import type { FastProgram } from "./cel-compile.ts";

/** One entry of an `x-kubernetes-validations` list. */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

/** Outcome of evaluating one rule against one value. */
export type RuleOutcome =
  { kind: "pass" } | { kind: "fail"; message: string } | { kind: "skipped"; reason: string };

/** Static/runtime coverage of a set of rules. */
export interface CelCoverage {
  /** Distinct rule expressions considered. */
  total: number;
  /** Rules that compiled and are evaluated. */
  evaluated: number;
  /** Rules that are never evaluated, with the reason. */
  skipped: number;
  skippedRules: Array<{ rule: string; reason: string }>;
  /** Evaluation errors seen so far (the rule was skipped for that object), per rule. */
  runtimeErrors: Array<{ rule: string; error: string; count: number }>;
}

type Program = (self: CelInput) => CelResult;
/** `fast`: the same rule compiled to closures when it is in their subset (cel-compile.ts). */
type Compiled = { ok: true; run: Program; fast?: FastProgram } | { ok: false; reason: string };

/** Operators and macros the planner implements itself (not looked up in the function resolver). */
const BUILTIN_CALLS = new Set([
  "_&&_",
  "_||_",
  "_?_:_",
  "_[_]",
  "_[?_]",
  "_?._",
  "@not_strictly_false",
  "@in",
  "has",
]);

/** Compiled RE2 patterns shared by all rules (the CRDs only call `matches` with literals). */
const regexCache = new Map<string, RE2JS>();

/** RE2 matcher with a compile cache; invalid patterns throw, which CEL turns into an error. */
const re2 = {
  compile(pattern: string): { test(text: string): boolean } {
    let re = regexCache.get(pattern);
    if (re === undefined) {
      re = RE2JS.compile(pattern);
      if (regexCache.size >= 1000) regexCache.clear();
      regexCache.set(pattern, re);
    }
    return re;
  },
};

/** True for IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d` in any spelling). */
function isIPv4Mapped(address: string): boolean {
  try {
    // The WHATWG URL parser canonicalises IPv6 (zero-run compression, hex hextets).
    const host = new URL(`http://[${address}]/`).hostname;
    return /^\[::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}\]$/.test(host);
  } catch {
    return false;
  }
}

/**
 * Kubernetes `isIP(string)`: a valid IPv4 or IPv6 address without zone; IPv4 with leading zeros
 * and IPv4-mapped IPv6 addresses are rejected (like netip.ParseAddr + the Kubernetes checks).
 */
export function k8sIsIP(address: string): boolean {
  const family = nodeIsIP(address);
  if (family === 4) return true;
  return family === 6 && !address.includes("%") && !isIPv4Mapped(address);
}

const k8sFuncs = [celFunc("isIP", [CelScalar.STRING], CelScalar.BOOL, (s: string) => k8sIsIP(s))];

const env = celEnv({ funcs: [...strings, ...k8sFuncs], re2 });

const compiled = new Map<string, Compiled>();
const runtimeErrors = new Map<string, { error: string; count: number }>();

/** Names of all functions called by a parsed expression (walks the protobuf AST generically). */
function calledFunctions(node: unknown, out: Set<string>, depth = 0): void {
  if (node === null || typeof node !== "object" || depth > 400) return;
  if (Array.isArray(node)) {
    for (const x of node) calledFunctions(x, out, depth + 1);
    return;
  }
  const kind = (node as { exprKind?: { case?: unknown; value?: { function?: unknown } } }).exprKind;
  if (kind?.case === "callExpr" && typeof kind.value?.function === "string") out.add(kind.value.function);
  for (const value of Object.values(node)) calledFunctions(value, out, depth + 1);
}

/** Compiles (and caches) a CEL expression; never throws. */
export function compileRule(rule: string): Compiled {
  const cached = compiled.get(rule);
  if (cached !== undefined) return cached;
  let result: Compiled;
  if (/\boldSelf\b/.test(rule)) {
    result = { ok: false, reason: "transition rule (uses oldSelf): not applicable on create" };
  } else {
    try {
      const parsed = parse(rule);
      const calls = new Set<string>();
      calledFunctions(parsed.expr, calls);
      const unknown = [...calls].filter((f) => !BUILTIN_CALLS.has(f) && env.funcs.find(f) === undefined);
      if (unknown.length > 0) {
        result = { ok: false, reason: `unsupported function(s): ${unknown.sort().join(", ")}` };
      } else {
        const program = plan(env, parsed);
        const fast = compileFast(parsed, { isIP: k8sIsIP });
        result = { ok: true, run: (self) => program({ self }), ...(fast === undefined ? {} : { fast }) };
      }
    } catch (err) {
      result = { ok: false, reason: `compile error: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  compiled.set(rule, result);
  return result;
}

let compiledRulesEnabled = true;

/** Whether rules run compiled to closures where they can (default); false: the interpreter only (tests). */
export function useCompiledRules(enabled: boolean): void {
  compiledRulesEnabled = enabled;
}

/** A compiled rule's value, or FALLBACK when the interpreter must evaluate it. */
function runFast(program: FastProgram, self: CelInput): unknown {
  try {
    return program(self);
  } catch {
    return FALLBACK; // FALLBACK itself, or a fault of the closures: the interpreter is the reference
  }
}

/** Runs a compiled program, converting thrown exceptions into an error string. */
function execute(program: Program, self: CelInput): { value: unknown } | { error: string } {
  try {
    const value = program(self);
    if (isCelError(value)) return { error: value.message };
    return { value };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Records a runtime evaluation error for the coverage report. */
function recordRuntimeError(rule: string, error: string): void {
  const entry = runtimeErrors.get(rule);
  if (entry === undefined) runtimeErrors.set(rule, { error, count: 1 });
  else entry.count++;
}

/** The user-facing message of a failed rule: messageExpression, else message, else the rule. */
function failureMessage(rule: CelRule, self: CelInput): string {
  if (rule.messageExpression !== undefined) {
    const program = compileRule(rule.messageExpression);
    if (program.ok) {
      const out = execute(program.run, self);
      if ("value" in out && typeof out.value === "string" && out.value.trim() !== "") return out.value;
    }
  }
  if (rule.message !== undefined && rule.message !== "") return rule.message;
  return `failed rule: ${rule.rule}`;
}

/** Evaluates one rule with `self` bound to an already converted value (see `toCelValue`). */
export function evaluateRule(rule: CelRule, self: CelInput): RuleOutcome {
  const program = compileRule(rule.rule);
  if (!program.ok) return { kind: "skipped", reason: program.reason };
  if (program.fast !== undefined && compiledRulesEnabled) {
    const value = runFast(program.fast, self);
    if (value === true) return { kind: "pass" };
    if (value === false) return { kind: "fail", message: failureMessage(rule, self) };
    // Anything else (a CEL error, a case the closures leave to the interpreter): the interpreter decides.
  }
  const out = execute(program.run, self);
  if ("error" in out) {
    recordRuntimeError(rule.rule, out.error);
    return { kind: "skipped", reason: `evaluation error: ${out.error}` };
  }
  if (out.value === true) return { kind: "pass" };
  if (out.value === false) return { kind: "fail", message: failureMessage(rule, self) };
  recordRuntimeError(rule.rule, "rule did not evaluate to a bool");
  return { kind: "skipped", reason: "rule did not evaluate to a bool" };
}

/** Coverage report for the given rule expressions (compiling them as needed). */
export function coverageOf(rules: Iterable<string>): CelCoverage {
  const distinct = [...new Set(rules)].sort();
  const skippedRules: CelCoverage["skippedRules"] = [];
  for (const rule of distinct) {
    const c = compileRule(rule);
    if (!c.ok) skippedRules.push({ rule, reason: c.reason });
  }
  const errors = [...runtimeErrors].map(([rule, e]) => ({ rule, error: e.error, count: e.count }));
  return {
    total: distinct.length,
    evaluated: distinct.length - skippedRules.length,
    skipped: skippedRules.length,
    skippedRules,
    runtimeErrors: errors.sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0)),
  };
}

const CEL_RESERVED = new Set([
  "true",
  "false",
  "null",
  "in",
  "as",
  "break",
  "const",
  "continue",
  "else",
  "for",
  "function",
  "if",
  "import",
  "let",
  "loop",
  "package",
  "namespace",
  "return",
  "var",
  "void",
  "while",
]);

/**
 * Escapes a property name the way Kubernetes exposes it to CEL (`namespace` → `__namespace__`,
 * `a-b` → `a__dash__b`, ...). Returns undefined for names CEL cannot access.
 */
export function escapeFieldName(name: string): string | undefined {
  const known = escapedNames.get(name);
  if (known !== undefined || escapedNames.has(name)) return known;
  const escaped = escapeName(name);
  if (escapedNames.size >= 10_000) escapedNames.clear();
  escapedNames.set(name, escaped);
  return escaped;
}

/** escapeFieldName's answers so far (field names repeat across objects). */
const escapedNames = new Map<string, string | undefined>();

function escapeName(name: string): string | undefined {
  if (name === "" || /^[0-9]/.test(name)) return undefined;
  if (CEL_RESERVED.has(name)) return `__${name}__`;
  const escaped = name.replace(/__|\.|-|\//g, (s) =>
    s === "__" ? "__underscores__" : s === "." ? "__dot__" : s === "-" ? "__dash__" : "__slash__",
  );
  return /^[_a-zA-Z][_a-zA-Z0-9]*$/.test(escaped) ? escaped : undefined;
}

/** The parts of a Kubernetes structural schema the extension checks look at. */
export interface StructuralSchema {
  type?: string | string[];
  properties?: Record<string, StructuralSchema>;
  additionalProperties?: StructuralSchema | boolean;
  items?: StructuralSchema;
  "x-kubernetes-validations"?: CelRule[];
  "x-kubernetes-list-type"?: string;
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-int-or-string"?: boolean;
  [keyword: string]: unknown;
}

/** A located problem (same shape as validate.ts's FieldError). */
export interface ExtensionError {
  path: string;
  message: string;
}

/** True for a non-null, non-array object. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Sub-schema for map values, if `additionalProperties` is a schema. */
function mapValueSchema(schema: StructuralSchema | undefined): StructuralSchema | undefined {
  const a = schema?.additionalProperties;
  return isPlainObject(a) ? a : undefined;
}

/**
 * Converts a JSON value to the CEL value Kubernetes would bind for it: objects with declared
 * properties become maps keyed by escaped property names (undeclared fields are pruned, as the
 * API server does), other objects become maps with raw keys, integers become CEL ints (bigint).
 */
export function toCelValue(
  data: unknown,
  schema: StructuralSchema | undefined,
  cache?: Conversions,
): CelInput {
  if (typeof data !== "object" || data === null) return toCelScalar(data, schema);
  const known = cache?.get(data);
  if (known !== undefined && known.schema === schema) return known.value;
  let value: CelInput;
  if (Array.isArray(data)) {
    const items = schema?.items;
    value = data.map((x: unknown) => toCelValue(x, items, cache));
  } else {
    const out = new Map<string, CelInput>();
    const props = schema?.properties;
    const values = props === undefined ? mapValueSchema(schema) : undefined;
    const record = data as Record<string, unknown>;
    for (const key in record) {
      if (!Object.hasOwn(record, key)) continue;
      const v = record[key];
      if (v === undefined) continue;
      if (props === undefined) out.set(key, toCelValue(v, values, cache));
      else if (Object.hasOwn(props, key)) {
        const name = escapeFieldName(key);
        if (name !== undefined) out.set(name, toCelValue(v, props[key], cache));
      }
    }
    value = out;
  }
  cache?.set(data, { schema, value });
  return value;
}

/** Converted values of one walk's data nodes (each node is converted once, not once per rule above it). */
type Conversions = WeakMap<object, { schema: StructuralSchema | undefined; value: CelInput }>;

function toCelScalar(data: unknown, schema: StructuralSchema | undefined): CelInput {
  if (typeof data === "number") {
    const type = schema?.type;
    const integer =
      type === "integer" ||
      schema?.["x-kubernetes-int-or-string"] === true ||
      (type === undefined && Number.isInteger(data));
    return integer && Number.isSafeInteger(data) ? BigInt(data) : data;
  }
  if (typeof data === "string" || typeof data === "boolean") return data;
  return null;
}

/** Appends a rule's `fieldPath` (`.a.b`, `['k']`, `[0]`) to a node path. */
export function appendFieldPath(path: string, fieldPath: string | undefined): string {
  if (fieldPath === undefined || fieldPath === "") return path;
  const normalized = fieldPath.replace(/\[\s*(['"])(.*?)\1\s*\]/g, "[$2]");
  const joined = path + (normalized.startsWith(".") || normalized.startsWith("[") ? "" : ".") + normalized;
  return joined.startsWith(".") ? joined.slice(1) : joined;
}

/** `spec` + `rules` → `spec.rules`; `""` + `spec` → `spec`. */
function child(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** Whether a value's JSON type fits the schema type (so rules may run on it). */
function typeFits(schema: StructuralSchema, data: unknown): boolean {
  if (schema.type === "object") return isPlainObject(data);
  if (schema.type === "array") return Array.isArray(data);
  return true;
}

/** Duplicate checks for `x-kubernetes-list-type: map` (by key fields) and `set` (by value). */
function checkListType(
  schema: StructuralSchema,
  list: unknown[],
  path: string,
  errors: ExtensionError[],
): void {
  const listType = schema["x-kubernetes-list-type"];
  if (listType !== "map" && listType !== "set") return;
  const keys = schema["x-kubernetes-list-map-keys"] ?? [];
  const seen = new Set<string>();
  list.forEach((item, i) => {
    let shown: unknown = item;
    if (listType === "map") {
      if (!isPlainObject(item)) return;
      shown = Object.fromEntries(keys.filter((k) => item[k] !== undefined).map((k) => [k, item[k]]));
    }
    const id = JSON.stringify(shown) ?? "undefined";
    if (seen.has(id)) errors.push({ path: `${path}[${i}]`, message: `Duplicate value: ${id}` });
    seen.add(id);
  });
}

/** Options for `checkExtensions`. */
export interface ExtensionOptions {
  /** Return true to skip the CEL rules of the node at `path` (e.g. it has type errors). */
  skipRules(path: string): boolean;
}

/**
 * Walks data alongside its schema and reports `x-kubernetes-validations` failures and list-type
 * duplicates. Only nodes present in the data are checked (like the API server).
 */
export function checkExtensions(
  schema: StructuralSchema,
  data: unknown,
  path: string,
  options: ExtensionOptions,
  errors: ExtensionError[] = [],
  conversions: Conversions = new WeakMap(),
): ExtensionError[] {
  if (data === undefined || !typeFits(schema, data)) return errors;
  const rules = schema["x-kubernetes-validations"];
  if (Array.isArray(rules) && rules.length > 0 && !options.skipRules(path)) {
    const self = toCelValue(data, schema, conversions);
    for (const rule of rules) {
      if (!isPlainObject(rule) || typeof rule.rule !== "string") continue;
      const outcome = evaluateRule(rule, self);
      if (outcome.kind === "fail") {
        errors.push({ path: appendFieldPath(path, rule.fieldPath), message: outcome.message });
      }
    }
  }
  if (Array.isArray(data)) {
    checkListType(schema, data, path, errors);
    const items = schema.items;
    if (items !== undefined)
      data.forEach((x: unknown, i) =>
        checkExtensions(items, x, `${path}[${i}]`, options, errors, conversions),
      );
  } else if (isPlainObject(data)) {
    const props = schema.properties;
    const values = mapValueSchema(schema);
    if (props !== undefined) {
      for (const [key, sub] of Object.entries(props)) {
        if (Object.hasOwn(data, key))
          checkExtensions(sub, data[key], child(path, key), options, errors, conversions);
      }
    } else if (values !== undefined) {
      for (const [key, value] of Object.entries(data)) {
        checkExtensions(values, value, `${path}[${key}]`, options, errors, conversions);
      }
    }
  }
  return errors;
}
