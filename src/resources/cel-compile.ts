// A CEL expression compiled to JavaScript closures, for the common subset of the Gateway API rules:
// field selection, `has()`, the all/exists/exists_one/map/filter macros, logic, comparisons,
// arithmetic on ints (int64 overflow checked) and doubles, `in`, `size`, indexing, and the string
// methods contains/startsWith/endsWith/matches (RE2), `type()`, and given functions of a string. The interpreter of @bufbuild/cel does the same
// work about 10× slower; validating 10,000 routes ran ≈ 1 s of it.
//
// The compiled form is a fast path, never a second semantics: an expression using anything else
// (another function, map literals, uints...) does not compile (`compileFast` returns
// undefined), and wherever evaluation meets a CEL error or a case it does not handle (a missing key,
// an overflow, operands of mixed types), it throws FALLBACK and the caller evaluates the rule with
// the interpreter, whose answer (value or error) counts. Errors follow CEL's logic on the way: `&&`
// and `||` absorb an error on one side when the other decides, and `@not_strictly_false` (the
// macros' loop condition) treats an error as true, exactly as the interpreter does.
import type { CelInput } from "@bufbuild/cel";
import { parse } from "@bufbuild/cel";
import { RE2JS } from "@bufbuild/re2";

/** Thrown when the compiled form cannot decide: evaluate with the interpreter instead. */
export const FALLBACK: unique symbol = Symbol("cel fallback");

export type FastProgram = (self: CelInput) => unknown;

type Slots = unknown[];
type Fn = (slots: Slots) => unknown;

interface Node {
  exprKind: { case: string | undefined; value?: unknown };
}

class Unsupported extends Error {}

const MAX_INT = 2n ** 63n - 1n;
const MIN_INT = -(2n ** 63n);
const NON_ASCII = /[^\t\n\r\u0020-\u007e]/u; // outside printable ASCII

const regexCache = new Map<string, RE2JS>();
function regex(pattern: string): RE2JS {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    re = RE2JS.compile(pattern);
    if (regexCache.size >= 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

/** CEL type values, as `type(x)` returns them and the type names denote them. */
const TYPES = {
  int: Symbol("int"),
  double: Symbol("double"),
  string: Symbol("string"),
  bool: Symbol("bool"),
  list: Symbol("list"),
  map: Symbol("map"),
  null_type: Symbol("null_type"),
} as const;

function typeOf(value: unknown): symbol {
  if (typeof value === "bigint") return TYPES.int;
  if (typeof value === "number") return TYPES.double;
  if (typeof value === "string") return TYPES.string;
  if (typeof value === "boolean") return TYPES.bool;
  if (Array.isArray(value)) return TYPES.list;
  if (value instanceof Map) return TYPES.map;
  if (value === null) return TYPES.null_type;
  return fail();
}

function fail(): never {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- a preallocated marker, not an error
  throw FALLBACK;
}

function int(value: bigint): bigint {
  if (value > MAX_INT || value < MIN_INT) fail();
  return value;
}

/** CEL equality on the value kinds toCelValue produces; mixed kinds (other than numbers) fall back. */
function equals(a: unknown, b: unknown): boolean {
  if (typeof a === "string" || typeof a === "boolean" || typeof a === "symbol") {
    if (typeof b !== typeof a) fail();
    return a === b;
  }
  if (typeof a === "bigint" || typeof a === "number") {
    if (typeof b === "bigint" || typeof b === "number") {
      return typeof a === typeof b ? a === b : Number(a) === Number(b);
    }
    fail();
  }
  if (a === null || b === null) {
    if (a === null && b === null) return true;
    fail();
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equals(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) {
      if (!b.has(k) || !equals(v, b.get(k))) return false;
    }
    return true;
  }
  return fail();
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === "string" && typeof b === "string") {
    if (NON_ASCII.test(a) || NON_ASCII.test(b)) fail(); // code point vs UTF-16 order: leave it to CEL
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if ((typeof a === "bigint" || typeof a === "number") && (typeof b === "bigint" || typeof b === "number")) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    const x = Number(a);
    const y = Number(b);
    if (Number.isNaN(x) || Number.isNaN(y)) fail();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === "boolean" && typeof b === "boolean") return a === b ? 0 : a ? 1 : -1;
  return fail();
}

function size(value: unknown): bigint {
  if (typeof value === "string") {
    return BigInt(/[\ud800-\udfff]/.test(value) ? Array.from(value).length : value.length);
  }
  if (Array.isArray(value)) return BigInt(value.length);
  if (value instanceof Map) return BigInt(value.size);
  return fail();
}

/** Evaluates a closure; a FALLBACK becomes `undefined` (a CEL error), other throws pass. */
function attempt(fn: Fn, slots: Slots): unknown {
  try {
    return fn(slots);
  } catch (error) {
    if (error === FALLBACK) return undefined;
    throw error;
  }
}

function stringArgs(target: unknown, arg: unknown): [string, string] {
  if (typeof target !== "string" || typeof arg !== "string") fail();
  return [target, arg];
}

/** Functions of one string argument (e.g. Kubernetes' `isIP`), by name. */
export type StringFunctions = Readonly<Record<string, (value: string) => unknown>>;

class Compiler {
  slots = 1; // slot 0: self
  readonly functions: StringFunctions;
  constructor(functions: StringFunctions) {
    this.functions = functions;
  }
  readonly #scope = new Map<string, number>([["self", 0]]);

  compile(node: Node): Fn {
    const { exprKind } = node;
    switch (exprKind.case) {
      case "constExpr":
        return this.#constant(exprKind.value as { constantKind: { case: string; value: unknown } });
      case "identExpr": {
        const { name } = exprKind.value as { name: string };
        const slot = this.#scope.get(name);
        if (slot === undefined && Object.hasOwn(TYPES, name)) {
          const type = TYPES[name as keyof typeof TYPES];
          return () => type;
        }
        if (slot === undefined) throw new Unsupported(`identifier ${name}`);
        return (s) => s[slot];
      }
      case "selectExpr": {
        const { operand, field, testOnly } = exprKind.value as {
          operand: Node;
          field: string;
          testOnly: boolean;
        };
        const of = this.compile(operand);
        if (testOnly) {
          return (s) => {
            const m = of(s);
            if (!(m instanceof Map)) fail();
            return m.has(field);
          };
        }
        return (s) => {
          const m = of(s);
          if (!(m instanceof Map) || !m.has(field)) fail();
          return m.get(field) as unknown;
        };
      }
      case "listExpr": {
        const { elements, optionalIndices } = exprKind.value as {
          elements: Node[];
          optionalIndices: number[];
        };
        if (optionalIndices.length > 0) throw new Unsupported("optional list elements");
        const fns = elements.map((e) => this.compile(e));
        return (s): unknown[] => fns.map((f): unknown => f(s));
      }
      case "comprehensionExpr":
        return this.#comprehension(exprKind.value as Comprehension);
      case "callExpr":
        return this.#call(exprKind.value as { function: string; target?: Node; args: Node[] });
      default:
        throw new Unsupported(`expression kind ${String(exprKind.case)}`);
    }
  }

  #constant(value: { constantKind: { case: string; value: unknown } }): Fn {
    const { constantKind } = value;
    let v: unknown;
    switch (constantKind.case) {
      case "nullValue":
        v = null;
        break;
      case "boolValue":
      case "int64Value":
      case "doubleValue":
      case "stringValue":
        v = constantKind.value;
        break;
      default:
        throw new Unsupported(`constant ${constantKind.case}`);
    }
    return () => v;
  }

  #comprehension(c: Comprehension): Fn {
    if (c.iterVar2 !== "") throw new Unsupported("two-variable comprehension");
    const range = this.compile(c.iterRange);
    const init = this.compile(c.accuInit);
    const iter = this.slots++;
    const accu = this.slots++;
    const savedIter = this.#scope.get(c.iterVar);
    const savedAccu = this.#scope.get(c.accuVar);
    this.#scope.set(c.iterVar, iter);
    this.#scope.set(c.accuVar, accu);
    const condition = this.compile(c.loopCondition);
    const step = this.compile(c.loopStep);
    this.#scope.delete(c.iterVar);
    if (savedIter !== undefined) this.#scope.set(c.iterVar, savedIter);
    const result = this.compile(c.result);
    this.#scope.delete(c.accuVar);
    if (savedAccu !== undefined) this.#scope.set(c.accuVar, savedAccu);
    return (s) => {
      const r = range(s);
      const items = Array.isArray(r) ? r : r instanceof Map ? [...r.keys()] : fail();
      s[accu] = init(s);
      for (const item of items) {
        s[iter] = item;
        if (condition(s) !== true) break;
        s[accu] = step(s);
      }
      return result(s);
    };
  }

  #call(call: { function: string; target?: Node; args: Node[] }): Fn {
    const name = call.function;
    if (call.target !== undefined) return this.#method(name, this.compile(call.target), call.args);
    const args = call.args.map((a) => this.compile(a));
    const [a = fail, b = fail, c = fail] = args;
    const arity = (n: number) => {
      if (args.length !== n) throw new Unsupported(`${name} with ${args.length} arguments`);
    };
    switch (name) {
      case "_&&_":
      case "_||_": {
        arity(2);
        const decisive = name === "_||_";
        return (s) => {
          const l = attempt(a, s);
          if (l === decisive) return decisive;
          const r = attempt(b, s);
          if (r === decisive) return decisive;
          if (l === !decisive && r === !decisive) return !decisive;
          return fail();
        };
      }
      case "_?_:_":
        arity(3);
        return (s) => {
          const cond = a(s);
          if (cond === true) return b(s);
          if (cond === false) return c(s);
          return fail();
        };
      case "!_":
        arity(1);
        return (s) => {
          const v = a(s);
          return typeof v === "boolean" ? !v : fail();
        };
      case "-_":
        arity(1);
        return (s) => {
          const v = a(s);
          if (typeof v === "bigint") return int(-v);
          return typeof v === "number" ? -v : fail();
        };
      case "@not_strictly_false":
        arity(1);
        return (s) => attempt(a, s) !== false;
      case "_==_":
        arity(2);
        return (s) => equals(a(s), b(s));
      case "_!=_":
        arity(2);
        return (s) => !equals(a(s), b(s));
      case "_<_":
        arity(2);
        return (s) => compare(a(s), b(s)) < 0;
      case "_<=_":
        arity(2);
        return (s) => compare(a(s), b(s)) <= 0;
      case "_>_":
        arity(2);
        return (s) => compare(a(s), b(s)) > 0;
      case "_>=_":
        arity(2);
        return (s) => compare(a(s), b(s)) >= 0;
      case "_+_":
        arity(2);
        return (s) => {
          const l = a(s);
          const r = b(s);
          if (typeof l === "bigint" && typeof r === "bigint") return int(l + r);
          if (typeof l === "number" && typeof r === "number") return l + r;
          if (typeof l === "string" && typeof r === "string") return l + r;
          if (Array.isArray(l) && Array.isArray(r)) return (l as unknown[]).concat(r as unknown[]);
          return fail();
        };
      case "_-_":
        arity(2);
        return (s) => {
          const l = a(s);
          const r = b(s);
          if (typeof l === "bigint" && typeof r === "bigint") return int(l - r);
          if (typeof l === "number" && typeof r === "number") return l - r;
          return fail();
        };
      case "_*_":
        arity(2);
        return (s) => {
          const l = a(s);
          const r = b(s);
          if (typeof l === "bigint" && typeof r === "bigint") return int(l * r);
          if (typeof l === "number" && typeof r === "number") return l * r;
          return fail();
        };
      case "_[_]":
        arity(2);
        return (s) => {
          const container = a(s);
          const key = b(s);
          if (Array.isArray(container)) {
            if (typeof key !== "bigint" || key < 0n || key >= BigInt(container.length)) fail();
            return container[Number(key)] as unknown;
          }
          if (container instanceof Map) {
            if (typeof key !== "string" || !container.has(key)) fail();
            return container.get(key) as unknown;
          }
          return fail();
        };
      case "@in":
        arity(2);
        return (s) => {
          const item = a(s);
          const container = b(s);
          if (Array.isArray(container)) return container.some((x) => equals(item, x));
          if (container instanceof Map) return typeof item === "string" ? container.has(item) : fail();
          return fail();
        };
      case "size":
        arity(1);
        return (s) => size(a(s));
      case "type":
        arity(1);
        return (s) => typeOf(a(s));
      default: {
        const fn = this.functions[name];
        if (fn !== undefined && args.length === 1) {
          return (s) => {
            const v = a(s);
            return typeof v === "string" ? fn(v) : fail();
          };
        }
        throw new Unsupported(`function ${name}`);
      }
    }
  }

  #method(name: string, target: Fn, argNodes: Node[]): Fn {
    const args = argNodes.map((a) => this.compile(a));
    if (name === "size" && args.length === 0) return (s) => size(target(s));
    const [arg] = args;
    if (arg === undefined || args.length !== 1) throw new Unsupported(`method ${name}/${args.length}`);
    switch (name) {
      case "contains":
        return (s) => {
          const [t, x] = stringArgs(target(s), arg(s));
          return t.includes(x);
        };
      case "startsWith":
        return (s) => {
          const [t, x] = stringArgs(target(s), arg(s));
          return t.startsWith(x);
        };
      case "endsWith":
        return (s) => {
          const [t, x] = stringArgs(target(s), arg(s));
          return t.endsWith(x);
        };
      case "matches":
        return (s) => {
          const [t, x] = stringArgs(target(s), arg(s));
          let re: RE2JS;
          try {
            re = regex(x);
          } catch {
            return fail();
          }
          return re.test(t);
        };
      default:
        throw new Unsupported(`method ${name}`);
    }
  }
}

interface Comprehension {
  iterVar: string;
  iterVar2: string;
  iterRange: Node;
  accuVar: string;
  accuInit: Node;
  loopCondition: Node;
  loopStep: Node;
  result: Node;
}

/**
 * The expression compiled to closures, or undefined when it uses something outside the subset
 * (or does not parse). The program returns the value, or throws FALLBACK: evaluate with the
 * interpreter then.
 */
type ParsedExpr = ReturnType<typeof parse>;

export function compileFast(
  rule: string | ParsedExpr,
  functions: StringFunctions = {},
): FastProgram | undefined {
  let fn: Fn;
  let compiler: Compiler;
  try {
    const parsed = typeof rule === "string" ? parse(rule) : rule;
    if (parsed.expr === undefined) return undefined;
    compiler = new Compiler(functions);
    fn = compiler.compile(parsed.expr);
  } catch {
    return undefined;
  }
  const count = compiler.slots;
  return (self) => {
    const slots: Slots = new Array<unknown>(count);
    slots[0] = self;
    return fn(slots);
  };
}
