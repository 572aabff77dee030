// A stateful, in-process emulator of the EventBridge Scheduler REST-JSON API.
// It exists so the real, unmodified @aws-sdk/client-scheduler (or the AWS CLI
// with --endpoint-url) can be exercised against behaviour that moto does not
// model: name conflicts, the DELETING window, pagination and real status codes,
// and faults injected at chosen moments.
// This module is the public face and the HTTP server; the parts live beside it:
// state.ts (groups, schedules, tags, time), protocol.ts (routing, wire shapes,
// errors), validation.ts, operations.ts, faults.ts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultInjector, parseFault, type FaultSpec, type FaultView } from './faults.js';
import { addressedGroup, createOperations, groupsRead } from './operations.js';
import { ApiError, STATUS, parseBody, pathSegments, route, send, sendError, sendHtml, type EmulatorErrorName, type Route } from './protocol.js';
import { SchedulerStore, type EmulatorGroupView, type GroupState, type ScheduleState } from './state.js';

export type { EmulatorErrorName } from './protocol.js';
export { TAGGING_TARGET_PREFIX } from './protocol.js';
export type { EmulatorGroupView, GroupState, ScheduleState } from './state.js';
export type { FaultSpec, FaultView, GroupTrigger, ListingOp } from './faults.js';
export { formatFault, parseFault } from './faults.js';

/** Path prefix of the emulator's own admin endpoint (faults, call counts); no AWS path starts with it. */
export const ADMIN_PREFIX = '/_emulator';

export interface EmulatorOptions {
  /** 0 = random free port (default 0). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default us-east-1. */
  region?: string;
  /** Default 123456789012. */
  accountId?: string;
  /** How long a deleted group stays DELETING before it disappears with its schedules (default 1000). */
  deletingMs?: number;
  /** A newly created group answers ConflictException to Tag/Untag/Delete for this long (default 0). */
  creatingMs?: number;
  /** Added latency on every call (default 0). */
  latencyMs?: number;
  /** Group quota, counting `default` and DELETING groups (default 500). */
  maxGroups?: number;
  /** Default true: a `default` group exists, ACTIVE, untagged. */
  seedDefaultGroup?: boolean;
  /** Clock in epoch ms (default Date.now). Lets tests drive the DELETING/creating windows without waiting. */
  now?: () => number;
  /** Faults armed from the start, typed or in the text form of `--fault` (see faults.ts). */
  faults?: Array<FaultSpec | string>;
}

export interface SchedulerEmulator {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  port: number;
  close(): Promise<void>;
  /** The next `count` calls of `operation` (or '*' for any) fail with `error`. */
  injectFault(operation: string, error: EmulatorErrorName, count: number): void;
  /** Arms a fault, typed or in the text form of `--fault` (a bad text throws a usage error). */
  addFault(fault: FaultSpec | string): void;
  /** Every fault armed since start or the last clearFaults, in text form, with how often it acted. */
  faults(): FaultView[];
  clearFaults(): void;
  setLatency(ms: number): void;
  /** Holds every call of `operation` (counted on arrival, answered later) until the returned release is called: lets a test order events without timing. */
  hold(operation: string): () => void;
  /** Calls per operation name (faulted ones included) since start or the last reset. */
  callCounts(): Record<string, number>;
  resetCallCounts(): void;
  /**
   * Direct state access for tests: bypasses validation of tags (so `aws:` tags can be seeded), faults and latency. Replaces an existing group of that name.
   * `everTagged` (default: any tags given) decides whether the Tagging API's GetResources returns the group.
   */
  seedGroup(
    name: string,
    tags?: Record<string, string>,
    opts?: { state?: GroupState; creationDate?: Date; lastModificationDate?: Date; everTagged?: boolean },
  ): void;
  /** Direct seeding of a schedule into an existing group. */
  seedSchedule(groupName: string, name: string, opts?: { state?: ScheduleState; scheduleExpression?: string }): void;
  groups(): EmulatorGroupView[];
  /** Deterministic JSON of the whole state (groups, tags, schedules), for "nothing changed" checksums. */
  snapshot(): string;
}

interface Routed {
  url: URL;
  method: string;
  segments: string[];
  matched: Route | undefined;
  op: string;
}

export async function startSchedulerEmulator(opts: EmulatorOptions = {}): Promise<SchedulerEmulator> {
  const now = opts.now ?? Date.now;
  const store = new SchedulerStore(opts.region ?? 'us-east-1', opts.accountId ?? '123456789012', opts.deletingMs ?? 1000, now);
  const handlers = createOperations(store, { maxGroups: opts.maxGroups ?? 500, creatingMs: opts.creatingMs ?? 0 });
  const faults = new FaultInjector(store, now());
  for (const f of opts.faults ?? []) faults.add(f);
  let latencyMs = opts.latencyMs ?? 0;
  const held = new Map<string, Array<() => void>>();
  let counts: Record<string, number> = {};
  const pendingTimers = new Set<NodeJS.Timeout>();

  if (opts.seedDefaultGroup ?? true) store.groups.set('default', store.newGroup('default', now()));

  // Time moves the state on: DELETING windows close, clock-triggered faults fire.
  function settle(): void {
    store.sweep();
    faults.tick();
  }

  // Routing and counting happen on arrival, so a call held by latency is already visible in callCounts().
  function arrive(rawUrl: string, method: string, target?: string): Routed {
    const url = new URL(rawUrl, 'http://emulator.invalid');
    const segments = pathSegments(url.pathname);
    const matched = route(method, segments, target);
    const op = matched?.op ?? 'UnknownOperation';
    counts[op] = (counts[op] ?? 0) + 1;
    return { url, method, segments, matched, op };
  }

  function handle({ url, method, segments, matched, op }: Routed, rawBody: string, res: http.ServerResponse): void {
    if (!matched) {
      send(res, 404, { message: `No operation matches ${method} ${url.pathname}` }, 'UnknownOperationException');
      return;
    }
    const json11 = matched.json11 === true;
    try {
      settle();
      let body: Record<string, unknown> = {};
      let badBody: ApiError | undefined;
      try {
        body = parseBody(rawBody);
      } catch (e) {
        badBody = e as ApiError;
      }
      const req = { method, segments, query: url.searchParams, body };
      const addressed = addressedGroup(op, req, matched.label);
      const intercept = faults.before(op, addressed, req);
      if (intercept && 'html' in intercept) return sendHtml(res, intercept.html);
      if (intercept) throw intercept.error;
      if (badBody) throw badBody;
      const reply = handlers[op]!(req, matched.label);
      faults.after(groupsRead(op, addressed, reply));
      send(res, reply.status, reply.body, undefined, json11);
    } catch (e) {
      if (e instanceof ApiError) sendError(res, e, json11);
      else send(res, 500, { Message: `Emulator bug: ${(e as Error).message}` }, 'InternalServerException', json11);
    }
  }

  // The admin endpoint lets a shell user (or a test driving the CLI) arm faults and read call
  // counts while the emulator runs; it is neither counted nor faulted nor delayed.
  function admin(method: string, path: string, rawBody: string, res: http.ServerResponse): void {
    const reply = (status: number, body: unknown): void => {
      const payload = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    };
    if (path === `${ADMIN_PREFIX}/calls` && method === 'GET') return reply(200, counts);
    if (path === `${ADMIN_PREFIX}/calls` && method === 'DELETE') {
      counts = {};
      return reply(200, counts);
    }
    if (path === `${ADMIN_PREFIX}/faults` && method === 'GET') return reply(200, faults.list());
    if (path === `${ADMIN_PREFIX}/faults` && method === 'DELETE') {
      faults.clear();
      return reply(200, faults.list());
    }
    if (path === `${ADMIN_PREFIX}/faults` && method === 'POST') {
      const lines = rawBody.split('\n').map((l) => l.trim()).filter((l) => l !== '');
      try {
        // Parse all before arming any, so a bad line arms nothing.
        const specs = lines.map((l) => parseFault(l));
        for (const s of specs) faults.add(s);
      } catch (e) {
        return reply(400, { message: (e as Error).message });
      }
      settle();
      return reply(201, faults.list());
    }
    return reply(404, { message: `The emulator's admin endpoint serves GET/DELETE ${ADMIN_PREFIX}/calls and GET/POST/DELETE ${ADMIN_PREFIX}/faults.` });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0] as string;
      if (path === ADMIN_PREFIX || path.startsWith(`${ADMIN_PREFIX}/`)) return admin(req.method ?? 'GET', path, rawBody, res);
      const target = req.headers['x-amz-target'];
      const routed = arrive(req.url ?? '/', req.method ?? 'GET', Array.isArray(target) ? target[0] : target);
      const go = (): void => {
        const queue = held.get(routed.op);
        if (queue) queue.push(() => handle(routed, rawBody, res));
        else handle(routed, rawBody, res);
      };
      // Latency simulates the network before the request reaches the service.
      if (latencyMs <= 0) return go();
      const timer = setTimeout(() => {
        pendingTimers.delete(timer);
        go();
      }, latencyMs);
      pendingTimers.add(timer);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    close() {
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      return new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        // The SDK keeps sockets alive; without this close() would wait for them to idle out.
        server.closeAllConnections();
      });
    },
    injectFault(operation, error, count) {
      if (!(error in STATUS)) throw new Error(`unknown fault ${error}`);
      if (count > 0) faults.add({ kind: 'error', op: operation, error, times: count });
    },
    addFault(fault) {
      faults.add(fault);
    },
    faults() {
      return faults.list();
    },
    clearFaults() {
      faults.clear();
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    hold(operation) {
      const queue: Array<() => void> = [];
      held.set(operation, queue);
      return () => {
        if (held.get(operation) === queue) held.delete(operation);
        for (const run of queue.splice(0)) run();
      };
    },
    callCounts() {
      return { ...counts };
    },
    resetCallCounts() {
      counts = {};
    },
    seedGroup(name, tags = {}, seedOpts = {}) {
      store.seedGroup(name, tags, seedOpts);
    },
    seedSchedule(groupName, name, seedOpts = {}) {
      store.seedSchedule(groupName, name, seedOpts);
    },
    groups() {
      settle();
      return store.views();
    },
    snapshot() {
      settle();
      return store.snapshot();
    },
  };
}
