// Validates and defaults Kubernetes objects the way a kube-apiserver does on create:
// OpenAPI schema (ajv) with defaults, Kubernetes schema extensions (CEL rules, list types, see
// cel.ts), object metadata, and a few hand-written rules for the core kinds Gatehouse reads.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { Ajv } from "ajv";
import type { ErrorObject, ValidateFunction } from "ajv";
import { checkExtensions, coverageOf, isPlainObject } from "./cel.ts";
import type { CelCoverage, StructuralSchema } from "./cel.ts";
import { GATEHOUSE_GROUP, GATEHOUSE_PROXY_SCHEMA, GATEHOUSE_PROXY_API_VERSION } from "./gatehouseproxy.ts";
import type { KubeObject } from "./meta.ts";

/** One problem, located by a field path like `spec.rules[0].matches[0].path.value`. */
export interface FieldError {
  path: string;
  message: string;
}

/** The validated object (a defaulted copy; the input is never mutated) and its problems. */
export interface ValidationResult {
  object: KubeObject;
  errors: FieldError[];
}

export type { CelCoverage } from "./cel.ts";

/** API groups whose kinds are validated against the generated CRD schemas. */
const GATEWAY_GROUPS = new Set(["gateway.networking.k8s.io", "gateway.networking.x-k8s.io"]);

type SchemaIndex = Record<string, Record<string, StructuralSchema>>;

let crdSchemas: SchemaIndex | undefined;

/** apiVersion → kind → openAPIV3Schema of every served Gateway API version (read lazily). */
function gatewaySchemas(): SchemaIndex {
  crdSchemas ??= JSON.parse(
    readFileSync(new URL("./generated/schemas.json", import.meta.url), "utf8"),
  ) as SchemaIndex;
  return crdSchemas;
}

/** What to validate an apiVersion/kind against. */
interface Target {
  key: string;
  schema: StructuralSchema;
  nameRule: NameRule;
}

/** `record[key]` if it is an own property (so `constructor`, `__proto__` etc. never match). */
function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Resolves the schema for an object; `unserved` lists versions for a known kind at a wrong version. */
function lookup(apiVersion: string, kind: string): Target | { unserved: string[] } | undefined {
  const key = `${apiVersion}/${kind}`;
  const core = own(CORE_SCHEMAS, key);
  if (core !== undefined) return { key, schema: core.schema, nameRule: core.nameRule };
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? apiVersion : apiVersion.slice(0, slash);
  // Gatehouse's own CRD (gatehouseproxy.ts).
  if (group === GATEHOUSE_GROUP && kind === "GatehouseProxy") {
    return apiVersion === GATEHOUSE_PROXY_API_VERSION
      ? { key, schema: GATEHOUSE_PROXY_SCHEMA, nameRule: "subdomain" }
      : { unserved: [GATEHOUSE_PROXY_API_VERSION] };
  }
  if (!GATEWAY_GROUPS.has(group)) return undefined;
  const all = gatewaySchemas();
  const schema = own(own(all, apiVersion), kind);
  if (schema !== undefined) return { key, schema, nameRule: "subdomain" };
  const served = Object.keys(all)
    .filter((v) => v.startsWith(`${group}/`) && own(own(all, v), kind) !== undefined)
    .sort();
  return served.length > 0 ? { unserved: served } : undefined;
}

/**
 * Copy of a CRD schema prepared for ajv: status accepted as is (the API server ignores it on create),
 * metadata left to validateMetadata, unknown fields rejected (kubectl's strict field validation)
 * and int-or-string typed.
 */
function prepare(schema: StructuralSchema, root = true): StructuralSchema {
  const out: StructuralSchema = { ...schema };
  const props = schema.properties;
  if (props !== undefined) {
    const copy: Record<string, StructuralSchema> = {};
    for (const [k, v] of Object.entries(props)) copy[k] = prepare(v, false);
    if (root) {
      copy["metadata"] = {};
      if (Object.hasOwn(copy, "status")) copy["status"] = {};
    }
    out.properties = copy;
    const open = schema["x-kubernetes-preserve-unknown-fields"] === true;
    if (schema.type === "object" && schema.additionalProperties === undefined && !open) {
      out.additionalProperties = false;
    }
  }
  if (isPlainObject(schema.additionalProperties))
    out.additionalProperties = prepare(schema.additionalProperties, false);
  if (schema.items !== undefined) out.items = prepare(schema.items, false);
  if (schema["x-kubernetes-int-or-string"] === true && schema.type === undefined)
    out.type = ["integer", "string"];
  for (const combinator of ["oneOf", "anyOf", "allOf"] as const) {
    const branches = schema[combinator];
    if (Array.isArray(branches)) out[combinator] = branches.map((b: StructuralSchema) => prepare(b, false));
  }
  return out;
}

// `optimize: false`: ajv's code optimisation pass halves nothing at run time here (≈ +1 µs per
// HTTPRoute without it) but doubles the first compilation (≈ 100 ms of each `gatehouse translate`).
const ajv = new Ajv({
  allErrors: true,
  strict: false,
  verbose: true,
  unicodeRegExp: false,
  code: { optimize: false },
});
ajv.addFormat("int32", {
  type: "number",
  validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
});
ajv.addFormat("int64", { type: "number", validate: (n) => Number.isInteger(n) });
ajv.addFormat("ipv4", (s) => isIP(s) === 4);
ajv.addFormat("ipv6", (s) => isIP(s) === 6);
ajv.addFormat("byte", (s) =>
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s.replace(/[\r\n]/g, "")),
);
ajv.addFormat(
  "date-time",
  (s) =>
    /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s) &&
    !Number.isNaN(Date.parse(s)),
);

const compiled = new Map<string, { schema: StructuralSchema; validate: ValidateFunction }>();

/** Prepared schema and ajv validator for a target, compiled on first use. */
function validatorFor(target: Target): { schema: StructuralSchema; validate: ValidateFunction } {
  let entry = compiled.get(target.key);
  if (entry === undefined) {
    const schema = prepare(target.schema);
    entry = { schema, validate: ajv.compile(schema) };
    compiled.set(target.key, entry);
  }
  return entry;
}

/** Deep copy of a JSON-like value (own enumerable keys, `__proto__` kept as a plain key). */
function cloneJson(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(cloneJson);
  const out: Record<string, unknown> = {};
  const record = value as Record<string, unknown>;
  for (const k in record) {
    if (!Object.hasOwn(record, k)) continue;
    if (k === "__proto__") {
      Object.defineProperty(out, k, {
        value: cloneJson(record[k]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else out[k] = cloneJson(record[k]);
  }
  return out;
}

/**
 * Applies schema defaults like the API server's structural defaulting: non-nullable nulls are
 * dropped, missing properties with a `default` get a copy of it, then children are defaulted
 * (including inside freshly applied defaults).
 */
function applyDefaults(schema: StructuralSchema | undefined, data: unknown): void {
  if (schema === undefined || typeof data !== "object" || data === null) return;
  if (Array.isArray(data)) {
    for (const item of data) applyDefaults(schema.items, item);
    return;
  }
  const record = data as Record<string, unknown>;
  const props = schema.properties ?? NO_PROPERTIES;
  const values = isPlainObject(schema.additionalProperties) ? schema.additionalProperties : undefined;
  for (const k of Object.keys(record)) {
    if (record[k] !== null) continue;
    const sub = Object.hasOwn(props, k) ? props[k] : values;
    if (sub !== undefined && sub.nullable !== true) Reflect.deleteProperty(record, k);
  }
  for (const k in props) {
    const sub = props[k];
    if (sub?.default !== undefined && record[k] === undefined) record[k] = cloneJson(sub.default);
  }
  for (const k of Object.keys(record)) applyDefaults(Object.hasOwn(props, k) ? props[k] : values, record[k]);
}

const NO_PROPERTIES: Record<string, StructuralSchema> = {};

/** Field path for a JSON pointer into `root`: `.field` for declared fields, `[i]` / `[key]` else. */
function pointerToPath(pointer: string, root: unknown, schema: StructuralSchema): string {
  let path = "";
  let node = root;
  let sub: StructuralSchema | undefined = schema;
  for (const raw of pointer.split("/").slice(1)) {
    const token = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const props = sub?.properties;
    if (Array.isArray(node)) {
      path += `[${token}]`;
      sub = sub?.items;
    } else if (props === undefined && isPlainObject(sub?.additionalProperties)) {
      path += `[${token}]`;
      sub = sub.additionalProperties;
    } else {
      path += path === "" ? token : `.${token}`;
      sub = props !== undefined && Object.hasOwn(props, token) ? props[token] : undefined;
    }
    node = isPlainObject(node) || Array.isArray(node) ? (node as Record<string, unknown>)[token] : undefined;
  }
  return path;
}

/** A short rendering of an offending value for messages. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const FORMAT_NAMES: Record<string, string> = {
  ipv4: "a valid IPv4 address",
  ipv6: "a valid IPv6 address",
  "date-time": "an RFC 3339 date-time",
  int32: "a 32-bit integer",
  int64: "a 64-bit integer",
  byte: "valid base64 data",
};

/** Description of a `format` value for messages. */
function formatName(format: string): string {
  return own(FORMAT_NAMES, format) ?? `in ${format} format`;
}

/** JSON type name of a value, as in schema `type`. */
function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** An ajv error turned into a message (pointer still a JSON pointer). */
interface Issue {
  pointer: string;
  schemaPath: string;
  keyword: string;
  message: string;
  /** The offending value and, for `format` errors, the format (used to merge anyOf branches). */
  value?: unknown;
  format?: string;
}

/** A user-facing message for one (non-combinator) ajv error. */
function describe(e: ErrorObject): Issue {
  const p = e.params as Record<string, unknown>;
  const at = (child: unknown): string =>
    `${e.instancePath}/${String(child).replace(/~/g, "~0").replace(/\//g, "~1")}`;
  const base = { pointer: e.instancePath, schemaPath: e.schemaPath, keyword: e.keyword, value: e.data };
  const limit = String(p["limit"]);
  switch (e.keyword) {
    case "required":
      return { ...base, pointer: at(p["missingProperty"]), message: "Required value" };
    case "additionalProperties":
      return { ...base, pointer: at(p["additionalProperty"]), message: "field not declared in schema" };
    case "type":
      return {
        ...base,
        message: `must be of type ${[p["type"]].flat().join(" or ")} (got ${jsonType(e.data)})`,
      };
    case "enum":
      return {
        ...base,
        message: `Unsupported value: ${show(e.data)}: supported values: ${[p["allowedValues"]].flat().map(show).join(", ")}`,
      };
    case "pattern":
      return {
        ...base,
        message: `Invalid value: ${show(e.data)}: must match the regular expression '${String(p["pattern"])}'`,
      };
    case "format":
      return {
        ...base,
        format: String(p["format"]),
        message: `Invalid value: ${show(e.data)}: must be ${formatName(String(p["format"]))}`,
      };
    case "maximum":
    case "minimum":
    case "exclusiveMaximum":
    case "exclusiveMinimum":
      return { ...base, message: `must be ${String(p["comparison"])} ${limit}` };
    case "maxLength":
      return { ...base, message: `Too long: must be at most ${limit} characters` };
    case "minLength":
      return { ...base, message: `must be at least ${limit} character${limit === "1" ? "" : "s"} long` };
    case "maxItems":
      return { ...base, message: `Too many: must have at most ${limit} items` };
    case "minItems":
      return { ...base, message: `must have at least ${limit} item${limit === "1" ? "" : "s"}` };
    case "maxProperties":
      return { ...base, message: `Too many: must have at most ${limit} entries` };
    case "minProperties":
      return { ...base, message: `must have at least ${limit} entries` };
    default:
      return { ...base, message: e.message ?? `failed ${e.keyword} check` };
  }
}

/**
 * Folds the errors of `oneOf`/`anyOf` branches into useful messages: an anyOf of formats becomes
 * "must be A or B"; for a oneOf, branches rejected by their discriminator (`not`/`enum`) are
 * dropped and the errors of the single remaining branch are reported.
 */
function fold(errors: ErrorObject[]): Issue[] {
  const combinators = errors.filter((e) => e.keyword === "oneOf" || e.keyword === "anyOf");
  let issues = errors.filter((e) => e.keyword !== "oneOf" && e.keyword !== "anyOf").map(describe);
  combinators.sort((a, b) => b.schemaPath.length - a.schemaPath.length);
  for (const c of combinators) {
    const prefix = `${c.schemaPath}/`;
    const children = issues.filter((i) => i.schemaPath.startsWith(prefix));
    issues = issues.filter((i) => !i.schemaPath.startsWith(prefix));
    const generic = { pointer: c.instancePath, schemaPath: c.schemaPath, keyword: c.keyword };
    if (c.keyword === "anyOf") {
      const first = children[0];
      if (
        first !== undefined &&
        children.every((i) => i.keyword === "format" && i.pointer === first.pointer)
      ) {
        const names = children.map((i) => formatName(i.format ?? ""));
        issues.push({
          ...generic,
          pointer: first.pointer,
          message: `Invalid value: ${show(first.value)}: must be ${names.join(" or ")}`,
        });
      } else {
        issues.push({ ...generic, message: "Invalid value: must match at least one of the allowed schemas" });
      }
      continue;
    }
    const branches = new Map<string, Issue[]>();
    for (const i of children) {
      const branch = i.schemaPath.slice(prefix.length).split("/")[0] ?? "";
      branches.set(branch, [...(branches.get(branch) ?? []), i]);
    }
    const candidates = [...branches.values()].filter(
      (b) => !b.some((i) => i.keyword === "not" || i.keyword === "enum"),
    );
    const only = candidates.length === 1 ? candidates[0] : undefined;
    if (only !== undefined && !Array.isArray((c.params as { passingSchemas?: unknown }).passingSchemas)) {
      issues.push(...only.map((i) => ({ ...i, schemaPath: c.schemaPath })));
    } else {
      issues.push({ ...generic, message: "Invalid value: must match exactly one of the allowed schemas" });
    }
  }
  return issues;
}

/** Orders paths naturally (`[2]` before `[10]`). */
function naturalCompare(a: string, b: string): number {
  const split = (s: string): string[] => s.match(/\d+|\D+/g) ?? [];
  const [xs, ys] = [split(a), split(b)];
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    const [x = "", y = ""] = [xs[i], ys[i]];
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) return Number(x) - Number(y) || (x < y ? -1 : 1);
    return x < y ? -1 : 1;
  }
  return xs.length - ys.length;
}

/** Sorted (by path, then message) and deduplicated errors. */
function tidy(errors: FieldError[]): FieldError[] {
  const seen = new Map<string, FieldError>();
  for (const e of errors) seen.set(`${e.path}\u0000${e.message}`, { path: e.path, message: e.message });
  return [...seen.values()].sort(
    (a, b) => naturalCompare(a.path, b.path) || naturalCompare(a.message, b.message),
  );
}

/** True if `path` is `ancestor` or inside it. */
function within(path: string, ancestor: string): boolean {
  return (
    ancestor === "" || path === ancestor || path.startsWith(`${ancestor}.`) || path.startsWith(`${ancestor}[`)
  );
}

/** Validation of a known kind (may throw on pathological input; see validateObject). */
function validateKnown(obj: Record<string, unknown>, target: Target): ValidationResult {
  const { schema, validate } = validatorFor(target);
  const data = cloneJson(obj) as Record<string, unknown>;
  pruneMetadataNulls(data);
  own(coreChecks, target.key)?.before?.(data);
  applyDefaults(schema, data);
  validate(data);
  const errors: FieldError[] = [];
  const typeErrors: string[] = [];
  for (const issue of fold(validate.errors ?? [])) {
    const path = pointerToPath(issue.pointer, data, schema);
    errors.push({ path, message: issue.message });
    if (issue.keyword === "type") typeErrors.push(path);
  }
  const skipRules = (path: string): boolean => typeErrors.some((t) => within(t, path));
  errors.push(...checkExtensions(schema, data, "", { skipRules }));
  errors.push(...validateMetadata(data["metadata"], target.nameRule));
  own(coreChecks, target.key)?.after?.(data, errors);
  return { object: data as KubeObject, errors: tidy(errors) };
}

/**
 * Validates an object like the kube-apiserver would on create and returns a defaulted copy.
 * Unknown apiVersion/kind: no errors, object returned unchanged. Never throws.
 */
export function validateObject(obj: KubeObject): ValidationResult {
  const value: unknown = obj;
  if (!isPlainObject(value)) return { object: obj, errors: [] };
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return { object: obj, errors: [] };
  try {
    const target = lookup(apiVersion, kind);
    if (target === undefined) return { object: obj, errors: [] };
    if ("unserved" in target) {
      const message = `${kind} is not served at ${apiVersion}; served versions: ${target.unserved.join(", ")}`;
      return { object: obj, errors: [{ path: "apiVersion", message }] };
    }
    return validateKnown(value, target);
  } catch (err) {
    const message = `could not be validated: ${err instanceof Error ? err.message : String(err)}`;
    return { object: obj, errors: [{ path: "", message }] };
  }
}

/** Every CEL rule expression in the Gateway API schemas (one entry per occurrence). */
export function allGatewayRules(): string[] {
  const rules: string[] = [];
  const walk = (node: StructuralSchema | undefined): void => {
    if (!isPlainObject(node)) return;
    for (const r of node["x-kubernetes-validations"] ?? [])
      if (typeof r.rule === "string") rules.push(r.rule);
    for (const sub of Object.values(node.properties ?? {})) walk(sub);
    if (isPlainObject(node.additionalProperties)) walk(node.additionalProperties);
    walk(node.items);
    for (const c of ["oneOf", "anyOf", "allOf"])
      if (Array.isArray(node[c])) (node[c] as StructuralSchema[]).forEach(walk);
  };
  for (const kinds of Object.values(gatewaySchemas()))
    for (const schema of Object.values(kinds)) walk(schema);
  return rules;
}

/**
 * CEL coverage over every distinct rule in the Gateway API schemas: how many compile and are
 * evaluated, which are skipped and why, and evaluation errors seen so far.
 */
export function celCoverage(): CelCoverage {
  return coverageOf(allGatewayRules());
}

// ---------------------------------------------------------------------------------------------
// Object metadata (CRD schemas declare it as a bare `type: object`).

/** How `metadata.name` is checked: DNS-1123 subdomain, DNS-1123 label or DNS-1035 label. */
type NameRule = "subdomain" | "label" | "dns1035";

const NAME_RULES: Record<NameRule, { re: RegExp; max: number; text: string }> = {
  subdomain: {
    re: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    max: 253,
    text: "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')",
  },
  label: {
    re: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    max: 63,
    text: "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')",
  },
  dns1035: {
    re: /^[a-z]([-a-z0-9]*[a-z0-9])?$/,
    max: 63,
    text: "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')",
  },
};

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const META_FIELDS = new Set(
  "name generateName namespace selfLink uid resourceVersion generation creationTimestamp deletionTimestamp deletionGracePeriodSeconds labels annotations ownerReferences finalizers managedFields".split(
    " ",
  ),
);

/** Problems of a name under a naming rule (empty if valid). */
function nameProblems(value: string, rule: NameRule): string[] {
  const { re, max, text } = NAME_RULES[rule];
  return [
    ...(value.length > max ? [`must be no more than ${max} characters`] : []),
    ...(re.test(value) ? [] : [text]),
  ];
}

/** Problems of a qualified name (label/annotation key): `[prefix/]name`. */
function qualifiedNameProblems(key: string): string[] {
  const parts = key.split("/");
  if (parts.length > 2)
    return ["a qualified name must be a name with an optional DNS subdomain prefix and '/'"];
  const [prefix, name = ""] = parts.length === 2 ? parts : [undefined, key];
  const out =
    prefix === undefined
      ? []
      : prefix === ""
        ? ["prefix part must be non-empty"]
        : nameProblems(prefix, "subdomain").map((m) => `prefix part ${m}`);
  if (name.length > 63) out.push("name part must be no more than 63 characters");
  if (!QUALIFIED_NAME.test(name)) {
    out.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')",
    );
  }
  return out;
}

/** Problems of a label value (empty if valid). */
function labelValueProblems(value: string): string[] {
  return [
    ...(value.length > 63 ? ["must be no more than 63 characters"] : []),
    ...(LABEL_VALUE.test(value)
      ? []
      : [
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345')",
        ]),
  ];
}

/** Validates `metadata` (nulls already pruned): name, namespace, labels, annotations, field types. */
function validateMetadata(meta: unknown, rule: NameRule): FieldError[] {
  if (meta === undefined) return [{ path: "metadata.name", message: "Required value: name is required" }];
  if (!isPlainObject(meta))
    return [{ path: "metadata", message: `must be of type object (got ${jsonType(meta)})` }];
  const errors: FieldError[] = [];
  const add = (path: string, message: string): number => errors.push({ path: `metadata.${path}`, message });
  const invalid = (path: string, value: unknown, problems: string[]): void => {
    for (const p of problems) add(path, `Invalid value: ${show(value)}: ${p}`);
  };
  for (const key of Object.keys(meta)) if (!META_FIELDS.has(key)) add(key, "field not declared in schema");
  for (const key of ["name", "generateName", "namespace"]) {
    const v = meta[key];
    if (v !== undefined && typeof v !== "string") add(key, `must be of type string (got ${jsonType(v)})`);
  }
  const { name, namespace } = meta;
  if (name === undefined || name === "") add("name", "Required value: name is required");
  else if (typeof name === "string") invalid("name", name, nameProblems(name, rule));
  if (typeof namespace === "string" && namespace !== "")
    invalid("namespace", namespace, nameProblems(namespace, "label"));
  let annotationBytes = 0;
  for (const field of ["labels", "annotations"]) {
    const map = meta[field];
    if (map === undefined) continue;
    if (!isPlainObject(map)) {
      add(field, `must be of type object (got ${jsonType(map)})`);
      continue;
    }
    for (const [k, v] of Object.entries(map)) {
      invalid(field, k, qualifiedNameProblems(k));
      if (typeof v !== "string") add(`${field}[${k}]`, `must be of type string (got ${jsonType(v)})`);
      else if (field === "labels") invalid(`${field}[${k}]`, v, labelValueProblems(v));
      else annotationBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    }
  }
  if (annotationBytes > 256 * 1024) add("annotations", "Too long: must have at most 262144 bytes");
  const generation = meta["generation"];
  if (generation !== undefined && !Number.isInteger(generation)) add("generation", "must be of type integer");
  const finalizers = meta["finalizers"];
  if (
    finalizers !== undefined &&
    !(Array.isArray(finalizers) && finalizers.every((f) => typeof f === "string"))
  ) {
    add("finalizers", "must be a list of strings");
  }
  return errors;
}

/** Drops null-valued metadata fields (JSON null decodes to "unset" in the API server). */
function pruneMetadataNulls(data: Record<string, unknown>): void {
  const meta = data["metadata"];
  if (meta === null) delete data["metadata"];
  if (!isPlainObject(meta)) return;
  for (const [k, v] of Object.entries(meta)) if (v === null) Reflect.deleteProperty(meta, k);
}

// ---------------------------------------------------------------------------------------------
// Core kinds: hand-written schemas for the fields in core.ts, in the same structural-schema
// dialect as the CRDs (so defaults, list types and CEL rules work the same way).

const str: StructuralSchema = { type: "string" };
const bool: StructuralSchema = { type: "boolean" };
const stringMap: StructuralSchema = { type: "object", additionalProperties: str };
const base64Map: StructuralSchema = {
  type: "object",
  additionalProperties: { type: "string", format: "byte" },
};
const protocol: StructuralSchema = { type: "string", enum: ["TCP", "UDP", "SCTP"], default: "TCP" };
const dnsLabel: StructuralSchema = {
  type: "string",
  maxLength: 63,
  pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
};
const port = (min: number): StructuralSchema => ({ type: "integer", minimum: min, maximum: 65535 });

/** An object node whose undeclared fields are allowed (core.ts only models a subset). */
function open(properties: Record<string, StructuralSchema>, extra: StructuralSchema = {}): StructuralSchema {
  return { type: "object", properties, "x-kubernetes-preserve-unknown-fields": true, ...extra };
}

/** A root schema: apiVersion, kind, metadata plus the given fields; nothing else allowed. */
function root(properties: Record<string, StructuralSchema>, extra: StructuralSchema = {}): StructuralSchema {
  return {
    type: "object",
    properties: { apiVersion: str, kind: str, metadata: {}, ...properties },
    ...extra,
  };
}

const required = (fieldPath: string): string => `Required value: ${fieldPath.slice(1)} is required`;

const SERVICE = root({
  spec: open(
    {
      type: {
        type: "string",
        enum: ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
        default: "ClusterIP",
      },
      clusterIP: str,
      externalName: str,
      selector: stringMap,
      ports: {
        type: "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["port", "protocol"],
        items: open(
          {
            name: dnsLabel,
            port: port(1),
            protocol,
            appProtocol: str,
            nodePort: port(0),
            targetPort: {
              "x-kubernetes-int-or-string": true,
              "x-kubernetes-validations": [
                {
                  rule: "type(self) == int ? self >= 1 && self <= 65535 : self.size() <= 15 && self.matches('^[a-z0-9]([a-z0-9-]*[a-z0-9])?$') && self.matches('[a-z]') && !self.contains('--')",
                  message:
                    "must be a port number (1-65535) or an IANA service name (at most 15 lowercase letters, digits or '-', with at least one letter)",
                },
              ],
            },
          },
          { required: ["port"] },
        ),
      },
    },
    {
      default: {},
      "x-kubernetes-validations": [
        {
          rule: "self.type == 'ExternalName' || (has(self.clusterIP) && self.clusterIP == 'None') || (has(self.ports) && size(self.ports) > 0)",
          message: required(".ports"),
          fieldPath: ".ports",
        },
        {
          rule: "self.type != 'ExternalName' || (has(self.externalName) && self.externalName != '')",
          message: required(".externalName"),
          fieldPath: ".externalName",
        },
        {
          rule: "!has(self.ports) || size(self.ports) < 2 || self.ports.all(p, has(p.name) && p.name != '')",
          message: "Required value: every port needs a name when the Service has more than one port",
          fieldPath: ".ports",
        },
        {
          rule: "!has(self.ports) || self.ports.all(p, !has(p.name) || p.name == '' || self.ports.exists_one(q, has(q.name) && q.name == p.name))",
          message: "Duplicate value: port names must be unique",
          fieldPath: ".ports",
        },
        {
          rule: "!has(self.clusterIP) || self.clusterIP in ['', 'None'] || isIP(self.clusterIP)",
          message: "Invalid value: must be empty, 'None' or a valid IP address",
          fieldPath: ".clusterIP",
        },
      ],
    },
  ),
  status: {},
});

const ENDPOINT_SLICE = root(
  {
    addressType: { type: "string", enum: ["IPv4", "IPv6", "FQDN"] },
    endpoints: {
      type: "array",
      maxItems: 1000,
      items: open(
        {
          addresses: {
            type: "array",
            minItems: 1,
            maxItems: 100,
            items: str,
            "x-kubernetes-list-type": "set",
          },
          conditions: { type: "object", properties: { ready: bool, serving: bool, terminating: bool } },
          hostname: dnsLabel,
          nodeName: str,
          zone: str,
        },
        { required: ["addresses"] },
      ),
    },
    ports: {
      type: "array",
      maxItems: 100,
      items: open({
        name: { ...dnsLabel, pattern: "^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", default: "" },
        port: port(1),
        protocol,
        appProtocol: str,
      }),
      "x-kubernetes-validations": [
        {
          rule: "self.all(p, self.exists_one(q, q.name == p.name))",
          message: "Duplicate value: port names must be unique",
        },
      ],
    },
  },
  { required: ["addressType"] },
);

/** CEL rule: a kubernetes.io/tls Secret needs `key` in data or stringData. */
function tlsKeyRule(key: string): { rule: string; message: string; fieldPath: string } {
  return {
    rule: `!has(self.type) || self.type != 'kubernetes.io/tls' || (has(self.data) && '${key}' in self.data) || (has(self.stringData) && '${key}' in self.stringData)`,
    message: `Required value: a kubernetes.io/tls Secret must contain ${key}`,
    fieldPath: `.data['${key}']`,
  };
}

const CORE_SCHEMAS: Record<string, { schema: StructuralSchema; nameRule: NameRule } | undefined> = {
  "v1/Namespace": {
    nameRule: "label",
    schema: root({ spec: open({ finalizers: { type: "array", items: str } }), status: {} }),
  },
  "v1/Service": { nameRule: "dns1035", schema: SERVICE },
  "discovery.k8s.io/v1/EndpointSlice": { nameRule: "subdomain", schema: ENDPOINT_SLICE },
  "v1/Secret": {
    nameRule: "subdomain",
    schema: root(
      {
        type: { type: "string", default: "Opaque" },
        data: base64Map,
        stringData: stringMap,
        immutable: bool,
      },
      { "x-kubernetes-validations": [tlsKeyRule("tls.crt"), tlsKeyRule("tls.key")] },
    ),
  },
  "v1/ConfigMap": {
    nameRule: "subdomain",
    schema: root(
      { data: stringMap, binaryData: base64Map, immutable: bool },
      {
        "x-kubernetes-validations": [
          {
            rule: "!has(self.data) || !has(self.binaryData) || self.data.all(k, !(k in self.binaryData))",
            message: "Duplicate value: a key must not be in both data and binaryData",
            fieldPath: ".binaryData",
          },
        ],
      },
    ),
  },
};

/** Config map / secret keys: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`. */
function checkConfigKeys(data: Record<string, unknown>, fields: string[], errors: FieldError[]): void {
  for (const field of fields) {
    const map = data[field];
    if (!isPlainObject(map)) continue;
    for (const key of Object.keys(map)) {
      if (/^[-._a-zA-Z0-9]{1,253}$/.test(key) && key !== "." && key !== "..") continue;
      errors.push({
        path: `${field}[${key}]`,
        message: `Invalid value: ${show(key)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (at most 253 characters, not '.' or '..')`,
      });
    }
  }
}

/** EndpointSlice addresses must match the slice's addressType. */
function checkEndpointAddresses(data: Record<string, unknown>, errors: FieldError[]): void {
  const type = data["addressType"];
  const endpoints = data["endpoints"];
  if (!Array.isArray(endpoints)) return;
  const fqdn = (a: string): boolean => {
    const name = a.endsWith(".") ? a.slice(0, -1) : a;
    return name.includes(".") && nameProblems(name, "subdomain").length === 0;
  };
  const [valid, what] =
    type === "IPv4"
      ? [(a: string) => isIP(a) === 4, "a valid IPv4 address"]
      : type === "IPv6"
        ? [(a: string) => isIP(a) === 6, "a valid IPv6 address"]
        : type === "FQDN"
          ? [fqdn, "a fully qualified domain name"]
          : [() => true, ""];
  endpoints.forEach((endpoint: unknown, i) => {
    const addresses = isPlainObject(endpoint) ? endpoint["addresses"] : undefined;
    if (!Array.isArray(addresses)) return;
    addresses.forEach((a: unknown, j) => {
      if (typeof a === "string" && !valid(a)) {
        errors.push({
          path: `endpoints[${i}].addresses[${j}]`,
          message: `Invalid value: ${show(a)}: must be ${what}`,
        });
      }
    });
  });
}

/** Service defaulting done in code by the API server: `targetPort` defaults to `port`. */
function defaultTargetPorts(data: Record<string, unknown>): void {
  const spec = data["spec"];
  const ports = isPlainObject(spec) ? spec["ports"] : undefined;
  if (!Array.isArray(ports)) return;
  for (const p of ports) {
    if (!isPlainObject(p) || typeof p["port"] !== "number") continue;
    if (p["targetPort"] === undefined || p["targetPort"] === 0 || p["targetPort"] === "")
      p["targetPort"] = p["port"];
  }
}

/** Kind-specific checks in code: `before` runs ahead of schema defaulting, `after` at the end. */
const coreChecks: Record<
  string,
  | {
      before?: (data: Record<string, unknown>) => void;
      after?: (data: Record<string, unknown>, errors: FieldError[]) => void;
    }
  | undefined
> = {
  "v1/Service": { before: defaultTargetPorts },
  "discovery.k8s.io/v1/EndpointSlice": { after: checkEndpointAddresses },
  "v1/Secret": { after: (data, errors) => checkConfigKeys(data, ["data", "stringData"], errors) },
  "v1/ConfigMap": { after: (data, errors) => checkConfigKeys(data, ["data", "binaryData"], errors) },
};
