import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { SchedulerApi } from './scheduler-api.js';
import { tagReadWorkerMain, type FromWorker, type TagReadWorkerData, type ToWorker, type WireError } from './tag-read-worker.js';

/**
 * Tag reads on a second core. A listing of many groups is bound by the client's CPU per call
 * (the SDK's middleware, signing, Node's HTTP client: ~2 ms a call), not by the 32 calls in
 * flight, and one thread uses one core. A worker thread with its own Scheduler client takes
 * part of the ListTagsForResource calls; the main thread keeps the listing, the concurrency
 * limit (and its back-off on throttling), the credential chain and every error's sentence, so a
 * read through the worker fails or succeeds exactly as one on the main thread. Started only for
 * listings above WORKER_MIN_GROUPS and on machines with a second core; should the worker die,
 * its reads run again on the main thread.
 */

/** Groups listed (with more pages to come) before a worker is worth its start-up (~0.1 s of CPU): see docs/performance.md. */
export const WORKER_MIN_GROUPS = 100;

export type TagsAnswer = { Tags?: Array<{ Key?: string; Value?: string }> };

export interface TagReadPool {
  /** Reads the worker has not answered yet. */
  readonly inFlight: number;
  /** True once the worker can take reads, false once it is gone. */
  readonly ready: boolean;
  /** ListTagsForResource through the worker: the SDK's answer, or its error as the main thread would have seen it. */
  send(arn: string): Promise<TagsAnswer>;
  close(): Promise<void>;
}

/** Where the worker loads the SDK from: the installed package. */
function sdkSource(): Pick<TagReadWorkerData, 'sdkPath'> | null {
  try {
    return { sdkPath: createRequire(import.meta.url).resolve('@aws-sdk/client-scheduler') };
  } catch {
    return null;
  }
}

const fromWire = (w: WireError): Error => Object.assign(new Error(w.message), w);

/** A pool of one worker, or null where it cannot help (one core) or cannot start (no SDK to load). */
export async function startTagReadPool(api: SchedulerApi, opts: { cores?: number } = {}): Promise<TagReadPool | null> {
  if ((opts.cores ?? availableParallelism()) < 2) return null;
  const source = sdkSource();
  if (!source) return null;
  const { Worker } = await import('node:worker_threads');
  const data: TagReadWorkerData = { settings: api.workerSettings, ...source };
  let worker: Worker;
  try {
    worker = new Worker(`(${tagReadWorkerMain.toString()})(require)`, { eval: true, workerData: data, stdout: false, stderr: false });
  } catch {
    return null;
  }
  worker.unref(); // never what keeps opsctl running
  let ready = false;
  let gone = false;
  let nextId = 0;
  const waiting = new Map<number, { arn: string; resolve: (v: TagsAnswer) => void; reject: (e: unknown) => void }>();
  const local = (arn: string) => api.client.send(new api.sdk.ListTagsForResourceCommand({ ResourceArn: arn }));
  const count = (calls: number) => {
    api.stats.calls += calls;
    api.stats.byOperation.ListTagsForResource = (api.stats.byOperation.ListTagsForResource ?? 0) + calls;
  };
  const retire = () => {
    if (gone) return;
    gone = true;
    ready = false;
    // Whatever the worker still held is read again here: a worker problem never changes a result.
    for (const [id, w] of waiting) {
      waiting.delete(id);
      local(w.arn).then(w.resolve, w.reject);
    }
  };
  worker.on('message', (m: FromWorker) => {
    if (m.t === 'done') {
      count(m.calls);
      api.stats.readsByWorker = (api.stats.readsByWorker ?? 0) + 1;
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error) w?.reject(fromWire(m.error));
      else w?.resolve({ Tags: m.tags });
    } else if (m.t === 'throttle') {
      api.stats.throttled += 1;
      api.stats.onThrottle?.();
    } else if (m.t === 'creds') {
      const provider = (api.client.config as { credentials?: () => Promise<unknown> }).credentials;
      Promise.resolve()
        .then(() => provider?.())
        .then(
          (identity) => worker.postMessage({ t: 'creds', id: m.id, identity } satisfies ToWorker),
          (e) => worker.postMessage({ t: 'creds', id: m.id, error: { name: e?.name, message: e?.message ?? String(e) } } satisfies ToWorker),
        );
    } else if (m.t === 'ready') {
      ready = !gone;
    }
  });
  worker.on('error', retire);
  worker.on('exit', retire);
  return {
    get inFlight() {
      return waiting.size;
    },
    get ready() {
      return ready;
    },
    send(arn) {
      if (gone) return local(arn);
      return new Promise<TagsAnswer>((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { arn, resolve, reject });
        worker.postMessage({ t: 'read', id, arn } satisfies ToWorker);
      });
    },
    async close() {
      if (gone) return;
      gone = true;
      await worker.terminate();
    },
  };
}
