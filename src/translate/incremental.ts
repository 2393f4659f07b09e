// Incremental translation: the same statuses and IR as translate() (index.ts), computed from the
// previous update's resolved graph by recomputing only what depends on the objects that changed.
//
// What is kept between updates:
// - the Gateway-level graph (GatewayClasses, Gateways, listeners, ListenerSets, the BackendTLSPolicy
//   index) with every object it read ("global" dependencies);
// - per HTTPRoute/GRPCRoute a record: its attachments, what it contributed (the rule entries it
//   emitted per listener and hostname, its backends, the listeners it counts on, its status), and
//   every object it read while being translated (Services, EndpointSlices by Service,
//   ReferenceGrants, Namespaces, ...; tracking.ts records the reads). An index from each object read
//   to the routes that read it says which routes an object change concerns;
// - per listener and hostname the rule entries and the virtual host built from them (rebuilt only
//   when an entry was added or removed), hostnames in precedence order, backends with a count of
//   the routes serving them, route statuses in output order.
//
// An update diffs the new snapshot against the previous one object by object (identity first, then
// resourceVersion, then content), then:
// - when a changed object was read by the Gateway-level graph (a GatewayClass, a Gateway, a
//   ListenerSet, a GatehouseProxy, a listener's certificate Secret or CA ConfigMap, a Namespace a
//   ListenerSet's allowedListeners selects, a ReferenceGrant a listener needs), resolves that graph
//   again: if routes see the same of it (routeView: listeners, their settings, what is programmed),
//   the route records move onto the new graph (a certificate rotation, a Gateway's addresses or
//   labels); otherwise, and for any change to what the BackendTLSPolicy index read (policies and
//   their CA ConfigMaps), when the translator options change, and while a Gateway presents a
//   backend client certificate (presentClientCertificate rewrites every rule of its listeners),
//   everything is translated again (state rebuilt from scratch, same code path). Those are rare,
//   small-count objects; finer handling is left for later;
// - otherwise recomputes the routes that changed or read a changed object, settles HTTPRoute/
//   GRPCRoute hostname conflicts again among the routes on listeners where both kinds attach (only
//   those can conflict), and patches the entries, counts, backends and statuses of those routes;
// - TLS, TCP and UDP routes are recomputed in full on every update (they are few in practice).
//
// Statuses: a route not recomputed keeps the lastTransitionTime of the update that last computed it;
// everything else is what translate() gives (the status writer keeps transition times of unchanged
// conditions anyway, status/merge.ts). With the same `now`, the result equals translate()'s byte for
// byte: incremental.test.ts checks it on random change sequences.
import type { IR, IRBackend, IRVirtualHost } from "../ir/types.ts";
import type { GRPCRoute, HTTPRoute } from "../resources/generated/types.ts";
import type { ObjectMap, Snapshot, SnapshotField } from "../resources/snapshot.ts";
import type { StatusEntry } from "../status/types.ts";
import { presentClientCertificate } from "./backendclientcert.ts";
import { endpointSliceService } from "./backends.ts";
import { backendTLSIndex, recordServiceUses, type ServiceUses } from "./backendtls.ts";
import { resolveGatewayClasses } from "./gatewayclass.ts";
import { resolveGateways, type GatewayNode, type ListenerNode } from "./gateway.ts";
import { compareHostnameSpecificity } from "./hostname.ts";
import {
  backendTLSStatuses,
  classStatuses,
  compareStatusEntries,
  gatewayIR,
  gatewayStatus,
  listenerSetStatus,
  routeStatus,
  translate,
  translateL4Routes,
  virtualHost,
  type RouteStatusInput,
  type TranslateResult,
} from "./index.ts";
import { resolveListenerSets, type ListenerSetNode } from "./listenersets.ts";
import type { TranslateOptions } from "./options.ts";
import { settleHostnameConflicts } from "./routes/conflicts.ts";
import { translateGRPCRoute } from "./routes/grpc.ts";
import { translateHTTPRoute } from "./routes/http.ts";
import { attachRoute, type ParentAttachment } from "./routes/parents.ts";
import { emitRoute, type HTTPLikeKind, type RouteResult, type RuleEntry } from "./routes/rules.ts";
import {
  anyOf,
  dependency,
  DependencyRecorder,
  ENDPOINT_SLICES_OF,
  trackedSnapshot,
  untracked,
} from "./tracking.ts";

export interface IncrementalResult extends TranslateResult {
  /** "full": translated from scratch (`reason` says why); "incremental": from the previous update. */
  mode: "full" | "incremental";
  reason?: string;
  /** HTTPRoutes and GRPCRoutes recomputed (translated, or only re-emitted after a conflict changed). */
  recomputed: number;
}

type RouteObject = HTTPRoute | GRPCRoute;

const ROUTE_FIELDS: ReadonlyArray<[HTTPLikeKind, "httpRoutes" | "grpcRoutes"]> = [
  ["HTTPRoute", "httpRoutes"],
  ["GRPCRoute", "grpcRoutes"],
];

interface RouteRecord {
  kind: HTTPLikeKind;
  /** `namespace/name` (the snapshot key). */
  key: string;
  route: RouteObject;
  /** Everything read while attaching, translating and emitting it. */
  deps: readonly string[];
  /** The attachments as attachRoute gave them (before hostname conflicts). */
  pristine: ParentAttachment[];
  /** After hostname conflicts (pristine itself when the route is not contested). */
  settled: ParentAttachment[];
  contribution: Contribution | undefined;
}

/**
 * A route's translation, kept only during the update that computed it (records stay small: a route
 * whose hostname-conflict outcome changes later is translated again).
 */
interface Translated {
  result: RouteResult | undefined;
  routeBackends: Map<string, IRBackend>;
  /** Grows while the route contributes (what that reads joins it). */
  deps: Set<string>;
}

/** What one route adds to the shared output. */
interface Contribution {
  entries: Array<{ listenerId: string; hostname: string; entry: RuleEntry }>;
  counted: ListenerNode[];
  backends: IRBackend[];
  /** `serviceKey\0gatewayNamespace\0gatewayName\0portName` */
  uses: string[];
  status: StatusEntry;
}

interface Bucket {
  entries: RuleEntry[];
  /** Built from `entries`; undefined when they changed since. */
  vhost: IRVirtualHost | undefined;
}

interface ListenerHosts {
  /** Hostnames in precedence order. */
  order: string[];
  buckets: Map<string, Bucket>;
}

interface Globals {
  classes: ReturnType<typeof resolveGatewayClasses>;
  gatewayNodes: GatewayNode[];
  gateways: Map<string, GatewayNode>;
  listenerSetNodes: ListenerSetNode[];
  listenerSets: Map<string, ListenerSetNode>;
  /** Every object read by the Gateway-level graph. */
  deps: Set<string>;
  /** Why every update is translated in full, if one is. */
  alwaysFull: string | undefined;
  /** What the BackendTLSPolicy index read (also among `deps`). */
  policyDeps: Set<string>;
  /** BackendTLSPolicies exist: Service uses are kept for their ancestors (adding one is a full update). */
  policies: boolean;
}

export class IncrementalTranslator {
  #snapshot: Snapshot | undefined;
  #options: TranslateOptions | undefined;
  #globals: Globals | undefined;
  readonly #recorder = new DependencyRecorder();
  readonly #records = new Map<string, RouteRecord>();
  /** dependency → key (`Kind namespace/name`) of the record, or keys of the records, that read it. */
  readonly #byDep = new Map<string, string | Set<string>>();
  readonly #hosts = new Map<string, ListenerHosts>();
  readonly #counts = new Map<ListenerNode, number>();
  readonly #backends = new Map<string, { backend: IRBackend; refs: number }>();
  /** Backend ids in IR order. */
  readonly #backendIds: string[] = [];
  readonly #uses = new Map<string, number>();
  /** Route status keys (`namespace/name`) in output order, per kind; statuses by record key. */
  readonly #statusOrder = new Map<HTTPLikeKind, string[]>([
    ["HTTPRoute", []],
    ["GRPCRoute", []],
  ]);
  readonly #statuses = new Map<string, StatusEntry>();
  /** Accepted pristine attachments per listener id and kind: where both kinds meet, conflicts may arise. */
  readonly #kindsOn = new Map<string, { HTTPRoute: Set<string>; GRPCRoute: Set<string> }>();
  #contested = new Set<string>();
  /** Backends of the TLS/TCP/UDP routes of the last update (recomputed each time). */
  #l4Backends: IRBackend[] = [];

  /** Translates `snapshot`, incrementally from the previous call when possible. */
  update(snapshot: Snapshot, options: TranslateOptions): IncrementalResult {
    // InferencePools (their statuses, their Pods) are translated by translate() only, for now: while
    // any exists, every update is a full translation, and the next one after them starts afresh.
    if (snapshot.inferencePools.size > 0) {
      this.#snapshot = undefined;
      this.#globals = undefined;
      return {
        ...translate(snapshot, options),
        mode: "full",
        reason: "InferencePools exist (not incremental yet)",
        recomputed: snapshot.httpRoutes.size + snapshot.grpcRoutes.size,
      };
    }
    try {
      return this.#update(snapshot, options);
    } catch (err) {
      // A bug: the kept state may be half updated. The next update starts from scratch.
      this.#snapshot = undefined;
      this.#globals = undefined;
      throw err;
    }
  }

  #update(snapshot: Snapshot, options: TranslateOptions): IncrementalResult {
    const tracked = trackedSnapshot(snapshot, this.#recorder);
    let reason = this.#fullReason(options);
    let dirty = new Set<string>();
    if (reason === undefined) {
      const changed = diff(this.#snapshot as Snapshot, snapshot);
      const global = (this.#globals as Globals).deps;
      const hit = [...changed.deps].find((d) => global.has(d));
      // A change the Gateway-level graph read: resolved again; when what routes see of it is the
      // same (a listener certificate rotated, a Gateway's addresses or labels changed), the routes
      // keep their records, moved onto the new graph. Otherwise everything is translated again.
      const policies = (this.#globals as Globals).policyDeps;
      const adopted =
        hit !== undefined &&
        ![...changed.deps].some((d) => policies.has(d)) &&
        this.#adopt(this.#resolveGlobals(tracked, options));
      if (hit !== undefined && !adopted) reason = `changed: ${describeDep(hit)}`;
      else {
        // The BackendTLSPolicy index is per snapshot; what it reads is among the global dependencies.
        this.#recorder.within(new Set(), () => backendTLSIndex(tracked));
        dirty = changed.routes;
        for (const d of changed.deps) {
          const readers = this.#byDep.get(d);
          if (typeof readers === "string") dirty.add(readers);
          else for (const key of readers ?? []) dirty.add(key);
        }
      }
    }
    if (reason !== undefined) {
      this.#reset(tracked, options);
      for (const [kind, field] of ROUTE_FIELDS)
        for (const key of snapshot[field].keys()) dirty.add(recordKey(kind, key));
    }
    this.#snapshot = snapshot;
    this.#options = options;
    return this.#finish(tracked, snapshot, options, dirty, reason);
  }

  #fullReason(options: TranslateOptions): string | undefined {
    const last = this.#options;
    if (last === undefined || this.#snapshot === undefined || this.#globals === undefined)
      return "first update";

    if (
      last.controllerName !== options.controllerName ||
      (last.infrastructure ?? "host") !== (options.infrastructure ?? "host") ||
      last.validators !== options.validators
    )
      return "translator options changed";
    return this.#globals.alwaysFull;
  }

  /** Forgets everything and resolves the Gateway-level graph again. */
  #reset(tracked: Snapshot, options: TranslateOptions): void {
    this.#records.clear();
    this.#byDep.clear();
    this.#hosts.clear();
    this.#counts.clear();
    this.#backends.clear();
    this.#backendIds.length = 0;
    this.#uses.clear();
    for (const order of this.#statusOrder.values()) order.length = 0;
    this.#statuses.clear();
    this.#kindsOn.clear();
    this.#contested = new Set();
    this.#l4Backends = [];
    this.#globals = this.#resolveGlobals(tracked, options);
  }

  /** Resolves the Gateway-level graph, recording what it reads. */
  #resolveGlobals(tracked: Snapshot, options: TranslateOptions): Globals {
    const infrastructure = options.infrastructure ?? "host";
    const deps = new Set<string>();
    return this.#recorder.within(deps, (): Globals => {
      const classes = resolveGatewayClasses(tracked, options.controllerName, infrastructure);
      const gatewayNodes = resolveGateways(tracked, classes, infrastructure);
      const gateways = new Map(gatewayNodes.map((g) => [g.key, g]));
      const listenerSetNodes = resolveListenerSets(tracked, gateways);
      const listenerSets = new Map(listenerSetNodes.map((s) => [s.key, s]));
      // Routes look policies up in this index without recording it: what it reads is kept apart, and
      // a change to it is always translated in full (see #adopt).
      const policyDeps = new Set<string>();
      this.#recorder.within(policyDeps, () => backendTLSIndex(tracked));
      for (const d of policyDeps) deps.add(d);
      const certified = gatewayNodes.find((g) => g.programmed && g.backendClientCertificate !== undefined);
      return {
        classes,
        gatewayNodes,
        gateways,
        listenerSetNodes,
        listenerSets,
        deps,
        policyDeps,
        policies: untracked(tracked).backendTLSPolicies.size > 0,
        alwaysFull:
          certified === undefined
            ? undefined
            : `Gateway ${certified.key} presents a backend client certificate (not incremental yet)`,
      };
    });
  }

  /**
   * Takes `fresh` as the Gateway-level graph when routes see the same of it as of the current one
   * (see routeView): every record's attachments, counted listeners and the listener counts move onto
   * its nodes. Returns false (nothing changed) otherwise.
   */
  #adopt(fresh: Globals): boolean {
    const old = this.#globals as Globals;
    if (fresh.alwaysFull !== undefined || fresh.policies !== old.policies) return false;
    if (routeView(fresh) !== routeView(old)) return false;
    const listeners = new Map<string, ListenerNode>();
    for (const l of [
      ...fresh.gatewayNodes.flatMap((g) => g.listeners),
      ...fresh.listenerSetNodes.flatMap((set) => set.listeners),
    ]) {
      const known = listeners.get(l.id);
      if (known !== undefined && known !== l) return false; // ids are unique; if not, play safe
      listeners.set(l.id, l);
    }
    const listener = (l: ListenerNode): ListenerNode => listeners.get(l.id) ?? l;
    for (const record of this.#records.values()) {
      for (const a of [...record.pristine, ...record.settled]) {
        a.gateway = fresh.gateways.get(a.gateway.key) ?? a.gateway;
        for (const la of a.listeners) la.listener = listener(la.listener);
      }
      if (record.contribution !== undefined)
        record.contribution.counted = record.contribution.counted.map(listener);
    }
    const counts = [...this.#counts];
    this.#counts.clear();
    for (const [l, n] of counts) this.#counts.set(listener(l), n);
    this.#globals = fresh;
    return true;
  }

  #finish(
    tracked: Snapshot,
    snapshot: Snapshot,
    options: TranslateOptions,
    dirty: Set<string>,
    reason: string | undefined,
  ): IncrementalResult {
    const globals = this.#globals as Globals;
    // 1. Recompute the dirty routes' attachments and rules (their contributions are withdrawn).
    const translated = new Map<string, Translated>();
    const recompute = (key: string): RouteRecord | undefined => {
      const old = this.#records.get(key);
      if (old !== undefined) this.#remove(old);
      const { kind, objectKey } = parseRecordKey(key);
      const route = snapshot[kind === "HTTPRoute" ? "httpRoutes" : "grpcRoutes"].get(objectKey);
      if (route === undefined) return undefined;
      const [record, work] = this.#compute(tracked, globals, kind, objectKey, route, options);
      this.#records.set(key, record);
      this.#index(key, record);
      translated.set(key, work);
      return record;
    };
    for (const key of dirty) recompute(key);
    // 2. HTTPRoute/GRPCRoute hostname conflicts, among the routes on listeners where both kinds attach.
    const contested = new Set<string>();
    for (const kinds of this.#kindsOn.values()) {
      if (kinds.HTTPRoute.size === 0 || kinds.GRPCRoute.size === 0) continue;
      for (const key of kinds.HTTPRoute) contested.add(key);
      for (const key of kinds.GRPCRoute) contested.add(key);
    }
    const settle = new Set([...contested, ...this.#contested]);
    this.#contested = contested;
    if (settle.size > 0) {
      const routes = [...settle]
        .map((key) => this.#records.get(key))
        .filter((r): r is RouteRecord => r !== undefined)
        .map((record) => ({
          record,
          kind: record.kind,
          route: record.route,
          attachments: record.pristine.map((a) => ({ ...a })),
        }));
      settleHostnameConflicts(routes);
      for (const { record, attachments } of routes) {
        const key = recordKey(record.kind, record.key);
        if (translated.has(key)) record.settled = attachments;
        else if (settlement(attachments) !== settlement(record.settled)) {
          // Its outcome changed: translated again (the same reads as before), settled as decided.
          const again = recompute(key);
          if (again !== undefined) again.settled = attachments;
        }
      }
    }
    // 3. Their contributions.
    for (const [key, work] of translated) {
      const record = this.#records.get(key);
      if (record !== undefined) this.#contribute(tracked, key, record, work, options);
    }

    // 4. Listener counts, TLS/TCP/UDP routes, the IR and the statuses.
    const listeners = new Set<ListenerNode>();
    for (const g of globals.gatewayNodes) for (const l of g.listeners) listeners.add(l);
    for (const s of globals.listenerSetNodes) for (const l of s.listeners) listeners.add(l);
    for (const l of listeners) l.attachedRoutes = this.#counts.get(l) ?? 0;
    for (const b of this.#l4Backends) this.#releaseBackend(b.id);
    const l4Backends = new Map<string, IRBackend>();
    const l4Statuses: RouteStatusInput[] = [];
    const l4Routes = translateL4Routes(
      tracked,
      globals.gateways,
      globals.listenerSets,
      l4Backends,
      l4Statuses,
    );
    this.#l4Backends = [...l4Backends.values()];
    for (const b of this.#l4Backends) this.#holdBackend(b);

    const held = this.#backendIds.map((id) => (this.#backends.get(id) as { backend: IRBackend }).backend);
    let ir: IR;
    if (globals.alwaysFull === undefined) {
      ir = {
        gateways: globals.gatewayNodes
          .filter((g) => g.programmed)
          .map((g) => gatewayIR(g, (id) => this.#virtualHosts(id), l4Routes)),
        backends: held,
      };
    } else {
      // As translate() does: the backend variants presenting a Gateway's client certificate are
      // registered while its listeners are listed (these updates are always translated in full).
      const backends = new Map(held.map((b) => [b.id, b]));
      const gateways = globals.gatewayNodes
        .filter((g) => g.programmed)
        .map((g) => {
          const out = gatewayIR(g, (id) => this.#virtualHosts(id), l4Routes);
          const certificate = g.backendClientCertificate;
          return certificate === undefined
            ? out
            : { ...out, listeners: presentClientCertificate(out.listeners, certificate, backends) };
        });
      ir = { gateways, backends: [...backends.values()].sort((a, b) => compareStrings(a.id, b.id)) };
    }

    const infrastructure = options.infrastructure ?? "host";
    const small: StatusEntry[] = [
      ...classStatuses(globals.classes, infrastructure, options.now),
      ...globals.gatewayNodes.map((g) => gatewayStatus(g, options.now)),
      ...globals.listenerSetNodes.map((s) => listenerSetStatus(s, options.now)),
      ...l4Statuses.map((r) => routeStatus(r, options)),
      ...(snapshot.backendTLSPolicies.size > 0
        ? backendTLSStatuses(tracked, this.#serviceUses(), options)
        : []),
    ].sort(compareStatusEntries);
    // GatewayClasses, Gateways and ListenerSets; the HTTPRoutes and GRPCRoutes; the other kinds.
    const isHead = (s: StatusEntry): boolean =>
      s.kind === "GatewayClass" || s.kind === "Gateway" || s.kind === "ListenerSet";
    const statuses: StatusEntry[] = small.filter(isHead);
    for (const kind of ["HTTPRoute", "GRPCRoute"] as const) {
      for (const key of this.#statusOrder.get(kind) ?? []) {
        statuses.push(this.#statuses.get(recordKey(kind, key)) as StatusEntry);
      }
    }
    for (const s of small) if (!isHead(s)) statuses.push(s);
    return {
      statuses,
      ir,
      mode: reason === undefined ? "incremental" : "full",
      ...(reason !== undefined ? { reason } : {}),
      recomputed: translated.size,
    };
  }

  /** Attaches and translates one route, recording what it reads. */
  #compute(
    tracked: Snapshot,
    globals: Globals,
    kind: HTTPLikeKind,
    key: string,
    route: RouteObject,
    options: TranslateOptions,
  ): [RouteRecord, Translated] {
    const deps = new Set<string>();
    return this.#recorder.within(deps, (): [RouteRecord, Translated] => {
      const pristine = attachRoute(tracked, kind, route, globals.gateways, globals.listenerSets);
      const routeBackends = new Map<string, IRBackend>();
      // Like translate(): a route attached to none of our Gateways is not translated at all.
      const result =
        pristine.length === 0
          ? undefined
          : kind === "HTTPRoute"
            ? translateHTTPRoute(tracked, route as HTTPRoute, routeBackends, options.validators)
            : translateGRPCRoute(tracked, route as GRPCRoute, routeBackends, options.validators);
      const record: RouteRecord = {
        kind,
        key,
        route,
        deps: [],
        pristine,
        settled: pristine,
        contribution: undefined,
      };
      return [record, { result, routeBackends, deps }];
    });
  }

  /** Indexes a new record's dependencies and accepted listeners. */
  #index(key: string, record: RouteRecord): void {
    for (const id of acceptedListenerIds(record.pristine)) {
      let kinds = this.#kindsOn.get(id);
      if (kinds === undefined)
        this.#kindsOn.set(id, (kinds = { HTTPRoute: new Set(), GRPCRoute: new Set() }));
      kinds[record.kind].add(key);
    }
  }

  /** Removes a record: its contribution, its index entries. */
  #remove(record: RouteRecord): void {
    const key = recordKey(record.kind, record.key);
    this.#withdraw(record);
    for (const d of record.deps) {
      const readers = this.#byDep.get(d);
      if (readers === key) this.#byDep.delete(d);
      else if (typeof readers === "object") {
        readers.delete(key);
        if (readers.size === 1) this.#byDep.set(d, readers.values().next().value as string);
      }
    }
    for (const id of acceptedListenerIds(record.pristine)) {
      const kinds = this.#kindsOn.get(id);
      if (kinds === undefined) continue;
      kinds[record.kind].delete(key);
      if (kinds.HTTPRoute.size === 0 && kinds.GRPCRoute.size === 0) this.#kindsOn.delete(id);
    }
    this.#records.delete(key);
  }

  /** Adds what a route gives to the output, and indexes what it read. */
  #contribute(
    tracked: Snapshot,
    key: string,
    record: RouteRecord,
    work: Translated,
    options: TranslateOptions,
  ): void {
    const { result } = work;
    // What it reads here (Services, for BackendTLSPolicy ancestors) joins its dependencies.
    const contribution =
      result === undefined
        ? undefined
        : this.#recorder.within(work.deps, () => this.#contribution(tracked, record, work, result, options));
    record.deps = [...work.deps];
    for (const d of record.deps) {
      const readers = this.#byDep.get(d);
      if (readers === undefined) this.#byDep.set(d, key);
      else if (typeof readers === "string") {
        if (readers !== key) this.#byDep.set(d, new Set([readers, key]));
      } else readers.add(key);
    }
    if (contribution === undefined) return;
    record.contribution = contribution;
    for (const { listenerId, hostname, entry } of contribution.entries) {
      const bucket = this.#bucket(listenerId, hostname);
      bucket.entries.push(entry);
      bucket.vhost = undefined;
    }
    for (const l of contribution.counted) this.#counts.set(l, (this.#counts.get(l) ?? 0) + 1);
    for (const b of contribution.backends) this.#holdBackend(b);
    for (const u of contribution.uses) this.#uses.set(u, (this.#uses.get(u) ?? 0) + 1);
    const order = this.#statusOrder.get(record.kind) as string[];
    insertSorted(order, record.key);
    this.#statuses.set(key, contribution.status);
  }

  /** What a translated route adds to the output (as translate() does for each attached route). */
  /** What a translated route adds to the output (as translate() does for each attached route). */
  #contribution(
    tracked: Snapshot,
    record: RouteRecord,
    work: Translated,
    result: RouteResult,
    options: TranslateOptions,
  ): Contribution {
    const attachments = record.settled;
    const uses: ServiceUses = new Map();
    if ((this.#globals as Globals).policies)
      recordServiceUses(
        tracked,
        uses,
        record.route,
        attachments
          .filter((a) => a.accepted)
          .map((a) => ({
            namespace: a.gateway.gateway.metadata.namespace ?? "default",
            name: a.gateway.gateway.metadata.name,
          })),
      );
    const entries: Contribution["entries"] = [];
    const served =
      emitRoute(record.kind, record.route, result, attachments, (listenerId, hostname, entry) =>
        entries.push({ listenerId, hostname, entry }),
      ) > 0;
    const counted: ListenerNode[] = [];
    let backends: IRBackend[] = [];
    if (result.rejected === undefined) {
      const seen = new Set<ListenerNode>();
      for (const a of attachments) {
        if (!a.accepted) continue;
        for (const { listener } of a.listeners) {
          if (seen.has(listener)) continue;
          seen.add(listener);
          counted.push(listener);
        }
      }
      if (served) backends = [...work.routeBackends.values()];
    }
    const status = routeStatus(
      {
        kind: record.kind,
        route: record.route,
        attachments,
        routeConditions: result.conditions,
        rejected: result.rejected,
      },
      options,
    );
    const useKeys: string[] = [];
    for (const [service, list] of uses)
      for (const u of list)
        useKeys.push(`${service}\0${u.gatewayNamespace}\0${u.gatewayName}\0${u.portName}`);
    return { entries, counted, backends, uses: useKeys, status };
  }

  /** Takes back what a route gave. */
  #withdraw(record: RouteRecord): void {
    const contribution = record.contribution;
    if (contribution === undefined) return;
    record.contribution = undefined;
    const removed = new Map<Bucket, Set<RuleEntry>>();
    for (const { listenerId, hostname, entry } of contribution.entries) {
      const bucket = this.#hosts.get(listenerId)?.buckets.get(hostname);
      if (bucket === undefined) continue;
      let set = removed.get(bucket);
      if (set === undefined) removed.set(bucket, (set = new Set()));
      set.add(entry);
    }
    for (const { listenerId, hostname } of contribution.entries) {
      const hosts = this.#hosts.get(listenerId);
      const bucket = hosts?.buckets.get(hostname);
      if (hosts === undefined || bucket === undefined) continue;
      const set = removed.get(bucket);
      if (set === undefined) continue;
      removed.delete(bucket);
      bucket.entries = bucket.entries.filter((e) => !set.has(e));
      bucket.vhost = undefined;
      if (bucket.entries.length === 0) {
        hosts.buckets.delete(hostname);
        removeSorted(hosts.order, hostname, compareHostnameSpecificity);
        if (hosts.buckets.size === 0) this.#hosts.delete(listenerId);
      }
    }
    for (const l of contribution.counted) {
      const n = (this.#counts.get(l) ?? 0) - 1;
      if (n > 0) this.#counts.set(l, n);
      else this.#counts.delete(l);
    }
    for (const b of contribution.backends) this.#releaseBackend(b.id);
    for (const u of contribution.uses) {
      const n = (this.#uses.get(u) ?? 0) - 1;
      if (n > 0) this.#uses.set(u, n);
      else this.#uses.delete(u);
    }
    removeSorted(this.#statusOrder.get(record.kind) as string[], record.key, compareStrings);
    this.#statuses.delete(recordKey(record.kind, record.key));
  }

  #bucket(listenerId: string, hostname: string): Bucket {
    let hosts = this.#hosts.get(listenerId);
    if (hosts === undefined) this.#hosts.set(listenerId, (hosts = { order: [], buckets: new Map() }));
    let bucket = hosts.buckets.get(hostname);
    if (bucket === undefined) {
      hosts.buckets.set(hostname, (bucket = { entries: [], vhost: undefined }));
      insertSorted(hosts.order, hostname, compareHostnameSpecificity);
    }
    return bucket;
  }

  #virtualHosts(listenerId: string): IRVirtualHost[] {
    const hosts = this.#hosts.get(listenerId);
    if (hosts === undefined) return [];
    return hosts.order.map((hostname) => {
      const bucket = hosts.buckets.get(hostname) as Bucket;
      return (bucket.vhost ??= virtualHost(hostname, bucket.entries));
    });
  }

  #holdBackend(backend: IRBackend): void {
    const held = this.#backends.get(backend.id);
    if (held !== undefined) {
      held.refs++;
      // The newest object (the same content, unless what it was made from changed: then every route
      // using it was recomputed).
      held.backend = backend;
      return;
    }
    this.#backends.set(backend.id, { backend, refs: 1 });
    insertSorted(this.#backendIds, backend.id);
  }

  #releaseBackend(id: string): void {
    const held = this.#backends.get(id);
    if (held === undefined) return;
    if (--held.refs > 0) return;
    this.#backends.delete(id);
    removeSorted(this.#backendIds, id, compareStrings);
  }

  /** The Service uses of every route, as recordServiceUses gives them (for BackendTLSPolicy ancestors). */
  #serviceUses(): ServiceUses {
    const uses: ServiceUses = new Map();
    for (const key of this.#uses.keys()) {
      const [service = "", gatewayNamespace = "", gatewayName = "", portName = ""] = key.split("\0");
      let list = uses.get(service);
      if (list === undefined) uses.set(service, (list = []));
      list.push({ gatewayNamespace, gatewayName, portName });
    }
    return uses;
  }
}

/**
 * What routes see of the Gateway-level graph (attachment, emission, Service uses), as a comparable
 * string: the Gateways, ListenerSets and listeners with everything but their conditions, TLS
 * material, attached-route counts and (Gateways) addresses and parameters.
 */
function routeView(g: Globals): string {
  const listener = (l: ListenerNode): unknown[] => [
    l.id,
    l.owner,
    l.listener,
    l.attachable,
    l.programmed,
    l.supportedKinds,
    l.allowedNamespaces,
  ];
  return JSON.stringify([
    g.gatewayNodes.map((n) => [
      n.key,
      n.gateway.metadata.namespace ?? "default",
      n.gateway.metadata.name,
      n.accepted,
      n.programmed,
      n.listeners.map(listener),
      n.listenerSets.map((s) => s.key),
    ]),
    g.listenerSetNodes.map((s) => [s.key, s.accepted, s.gateway.key, s.listeners.map(listener)]),
  ]);
}

function recordKey(kind: HTTPLikeKind, key: string): string {
  return `${kind} ${key}`;
}

function parseRecordKey(key: string): { kind: HTTPLikeKind; objectKey: string } {
  const space = key.indexOf(" ");
  return { kind: key.slice(0, space) as HTTPLikeKind, objectKey: key.slice(space + 1) };
}

function acceptedListenerIds(attachments: readonly ParentAttachment[]): Set<string> {
  const ids = new Set<string>();
  for (const a of attachments) if (a.accepted) for (const l of a.listeners) ids.add(l.listener.id);
  return ids;
}

/** What hostname-conflict settlement decided for a route, as a comparable string. */
function settlement(attachments: readonly ParentAttachment[]): string {
  return JSON.stringify(
    attachments.map((a) => [a.accepted, a.conditions, a.listeners.map((l) => [l.listener.id, l.hostnames])]),
  );
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Inserts `value` into the sorted `list` (no-op when present). */
function insertSorted(
  list: string[],
  value: string,
  compare: (a: string, b: string) => number = compareStrings,
): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compare(list[mid] as string, value);
    if (c === 0) return;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, value);
}

function removeSorted(list: string[], value: string, compare: (a: string, b: string) => number): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compare(list[mid] as string, value);
    if (c === 0) {
      list.splice(mid, 1);
      return;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
}

function describeDep(dep: string): string {
  const [field = "", key = ""] = dep.split("\0");
  return key === "*" ? `some ${field}` : `${field} ${key}`;
}

/** What differs between two snapshots: the dependencies it touches, and the routes changed. */
function diff(before: Snapshot, after: Snapshot): { deps: Set<string>; routes: Set<string> } {
  const deps = new Set<string>();
  const routes = new Set<string>();
  for (const field of Object.keys(after) as SnapshotField[]) {
    const prev = before[field] as ObjectMap<unknown>;
    const next = after[field] as ObjectMap<unknown>;
    if (prev === next) continue;
    const mark = (key: string, old: unknown, now: unknown): void => {
      deps.add(dependency(field, key));
      deps.add(anyOf(field));
      if (field === "httpRoutes") routes.add(recordKey("HTTPRoute", key));
      else if (field === "grpcRoutes") routes.add(recordKey("GRPCRoute", key));
      else if (field === "endpointSlices") {
        for (const slice of [old, now]) {
          const service = slice === undefined ? undefined : endpointSliceService(slice as never);
          if (service !== undefined) deps.add(dependency(ENDPOINT_SLICES_OF, service));
        }
      }
    };
    let kept = 0;
    for (const [key, object] of next) {
      const old = prev.get(key);
      if (old !== undefined) kept++;
      if (old === object || (old !== undefined && sameObject(old, object))) continue;
      mark(key, old, object);
    }
    if (kept < prev.size) {
      for (const [key, old] of prev) if (!next.has(key)) mark(key, old, undefined);
    }
  }
  return { deps, routes };
}

/** Whether two versions of an object are the same: same resourceVersion (API server), else same content. */
function sameObject(a: unknown, b: unknown): boolean {
  const ma = (a as { metadata?: { resourceVersion?: string; uid?: string } }).metadata;
  const mb = (b as { metadata?: { resourceVersion?: string; uid?: string } }).metadata;
  if (
    ma?.resourceVersion !== undefined &&
    ma.resourceVersion === mb?.resourceVersion &&
    ma.uid !== undefined &&
    ma.uid === mb.uid
  )
    return true;
  return deepEqual(a, b);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
