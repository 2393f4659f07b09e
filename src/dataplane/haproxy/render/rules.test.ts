import assert from "node:assert/strict";
import { test } from "node:test";
import { retryProfile } from "./rules.ts";

test("retryProfile: attempts default to 1, codes sorted and deduplicated", () => {
  assert.equal(retryProfile({}), undefined);
  assert.deepEqual(retryProfile({ retry: { codes: [] } }), { attempts: 1, codes: [] });
  assert.deepEqual(retryProfile({ retry: { attempts: 3, codes: [503, 500, 503] } }), {
    attempts: 3,
    codes: [500, 503],
  });
});

test("retryProfile: a backendRequest timeout is retried only when every try fits in the request timeout", () => {
  const withTimeouts = (attempts: number, timeouts: { requestMs?: number; backendRequestMs?: number }) =>
    retryProfile({ retry: { attempts, codes: [503] }, timeouts })?.timeout === true;
  // No backendRequest timeout (or 0: disabled): a timeout is the request's own, never retried.
  assert.equal(withTimeouts(2, {}), false);
  assert.equal(withTimeouts(2, { requestMs: 1000 }), false);
  assert.equal(withTimeouts(2, { backendRequestMs: 0, requestMs: 1000 }), false);
  // No request timeout (or 0: disabled): nothing bounds the tries together.
  assert.equal(withTimeouts(2, { backendRequestMs: 300 }), true);
  assert.equal(withTimeouts(2, { backendRequestMs: 300, requestMs: 0 }), true);
  // (attempts + 1) × backendRequest against request.
  assert.equal(withTimeouts(2, { backendRequestMs: 300, requestMs: 900 }), true);
  assert.equal(withTimeouts(2, { backendRequestMs: 300, requestMs: 899 }), false);
  assert.equal(withTimeouts(1, { backendRequestMs: 300, requestMs: 600 }), true);
  // backendRequest larger than request: the request timeout strikes first.
  assert.equal(withTimeouts(1, { backendRequestMs: 2000, requestMs: 1000 }), false);
  // No retries at all.
  assert.equal(withTimeouts(0, { backendRequestMs: 300 }), false);
});
