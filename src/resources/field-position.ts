// Where a field named by its path (as validation reports it) is in a YAML document's text, so that
// a rejected object's problem names a line and column like a syntax error does.
import type { Document } from "yaml";
import { yamlLibrary } from "./yaml-lib.ts";

/**
 * The offset in the text of the field at `path` (`spec.rules[0].matches[0].path.type`, as
 * validation reports it) in `doc`: its value, or its key when it has no value; the nearest
 * enclosing field present when the field itself is not in the text (a missing required field).
 */
export function fieldOffset(doc: Document, path: string): number | undefined {
  const { isMap, isPair, isScalar, isSeq } = yamlLibrary();
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (const segment of fieldSegments(path)) {
    if (isSeq(node)) {
      node = /^\d+$/.test(segment) ? node.items[Number(segment)] : undefined;
      if (node === undefined) break;
      offset = rangeStart(node) ?? offset;
    } else if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && isScalar(item.key) && String(item.key.value) === segment,
      );
      if (pair === undefined) break;
      offset = rangeStart(pair.value) ?? rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else {
      break;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  if (typeof node !== "object" || node === null || !("range" in node)) return undefined;
  const range = (node as { range?: unknown }).range;
  return Array.isArray(range) && typeof range[0] === "number" ? range[0] : undefined;
}

/** `a.b[0][key.x].c` → `a`, `b`, `0`, `key.x`, `c`. */
function fieldSegments(path: string): string[] {
  const segments: string[] = [];
  let i = 0;
  while (i < path.length) {
    const char = path[i];
    if (char === ".") {
      i++;
    } else if (char === "[") {
      const end = path.indexOf("]", i);
      segments.push(path.slice(i + 1, end < 0 ? path.length : end));
      i = end < 0 ? path.length : end + 1;
    } else {
      let j = i;
      while (j < path.length && path[j] !== "." && path[j] !== "[") j++;
      segments.push(path.slice(i, j));
      i = j;
    }
  }
  return segments;
}
