// The fast path of YAML parsing: js-yaml's event parser and constructor, about 6× faster than the
// `yaml` library's document model on large files. It is taken only for plain input, where both give
// the same values: the YAML 1.2 core schema (as the `yaml` library's default; `on`, `yes`, `0755`
// with no `0o`, timestamps are strings or decimal numbers, not YAML 1.1 booleans, octals or dates),
// no tags, anchors, aliases, directives or merge keys, no duplicate keys, no syntax error, no flow
// collection closing at the start of a line (the `yaml` library warns about its indentation). For
// anything else `fastDocuments` answers undefined and the caller parses with the `yaml` library,
// which reports errors and warnings with their line and column (see load.ts).
import {
  CORE_SCHEMA,
  EVENT_ID,
  NOT_RESOLVED,
  constructFromEvents,
  defineScalarTag,
  floatCoreTag,
  parseEvents,
} from "js-yaml";
import type { Event } from "js-yaml";

/** The core schema's floats, but out-of-range numbers (`1e400`) are ±Infinity as in the `yaml` library. */
const FLOAT = /^(?:[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+(?:[eE][-+]?[0-9]+)?)$/;
const floatTag = defineScalarTag<number>("tag:yaml.org,2002:float", {
  implicit: true,
  implicitFirstChars: floatCoreTag.implicitFirstChars,
  resolve: (source, isExplicit, tagName) => {
    const value = floatCoreTag.resolve(source, isExplicit, tagName);
    if (value !== NOT_RESOLVED) return value;
    return FLOAT.test(source) ? Number(source) : NOT_RESOLVED;
  },
  identify: floatCoreTag.identify,
  represent: floatCoreTag.represent,
});
const SCHEMA = CORE_SCHEMA.withTags(floatTag);

/** Same depth limit as js-yaml's default; deeper input goes to the `yaml` library. */
const MAX_DEPTH = 100;

export interface FastDocuments {
  /** One value per document, empty documents included (null), in order. */
  values: unknown[];
  /** The offset where each document's content starts (-1 for an empty document). */
  starts: number[];
}

/**
 * The documents of `text` when it is plain YAML that js-yaml and the `yaml` library read alike;
 * undefined when it is not (or does not parse): then only the `yaml` library may read it.
 */
export function fastDocuments(text: string): FastDocuments | undefined {
  // Merge keys, and flow collections closing at a line start (a `yaml` warning), are left to `yaml`.
  if (text.includes("<<") || /^[ \t]*[\]}]/m.test(text)) return undefined;
  let events: Event[];
  try {
    events = parseEvents(text, { maxDepth: MAX_DEPTH });
  } catch {
    return undefined;
  }
  const starts: number[] = [];
  let open = false;
  for (const event of events) {
    switch (event.type) {
      case EVENT_ID.DOCUMENT:
        if (event.directives.length > 0) return undefined;
        starts.push(-1);
        open = true;
        break;
      case EVENT_ID.ALIAS:
        return undefined;
      case EVENT_ID.SCALAR:
        if (event.tagStart >= 0 || event.anchorStart >= 0) return undefined;
        if (open) starts[starts.length - 1] = event.valueStart;
        open = false;
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE:
        if (event.tagStart >= 0 || event.anchorStart >= 0) return undefined;
        if (open) starts[starts.length - 1] = event.start;
        open = false;
        break;
      default:
        open = false;
    }
  }
  let values: unknown[];
  try {
    values = constructFromEvents(events, { source: text, schema: SCHEMA });
  } catch {
    return undefined; // duplicate keys, complex keys, ...
  }
  if (values.length !== starts.length) return undefined;
  return { values, starts };
}
