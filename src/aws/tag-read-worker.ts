/**
 * The body of a tag-read worker thread (see tag-read-pool.ts): its own Scheduler client, with the
 * main thread's settings, answering ListTagsForResource for the ARNs it is sent. It runs from its
 * source text (`new Worker(code, { eval: true })`: the bundle has no file per module), so this
 * function must be self-contained: no imports, no reference to anything outside it, and no
 * dynamic import (scripts/bundle.mjs rewrites those). Credentials come from the main thread's
 * client (one credential chain per run); the error classification stays on the main thread.
 */

/** Scheduler client settings the worker copies (plain data: they cross the thread boundary). */
export interface TagReadWorkerData {
  settings: Record<string, unknown>;
  /** The installed @aws-sdk/client-scheduler's entry, resolved by the main thread. */
  sdkPath: string;
}

/** Main → worker. */
export type ToWorker = { t: 'read'; id: number; arn: string } | { t: 'creds'; id: number; identity?: unknown; error?: WireError };
/** Worker → main. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'done'; id: number; calls: number; tags?: Array<{ Key?: string; Value?: string }>; error?: WireError }
  | { t: 'creds'; id: number }
  | { t: 'throttle' };

/** An error as it crosses the thread boundary: what translateAwsError and the gateway read. */
export interface WireError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: unknown;
  $fault?: string;
}

export function tagReadWorkerMain(req: NodeJS.Require): void {
  const { parentPort, workerData } = req('node:worker_threads') as typeof import('node:worker_threads');
  const data = workerData as TagReadWorkerData;
  const port = parentPort as import('node:worker_threads').MessagePort;
  const post = (m: FromWorker) => port.postMessage(m);
  const toWire = (e: unknown): WireError => {
    const x = (e ?? {}) as WireError;
    return { name: x.name, message: x.message ?? String(e), code: x.code, $metadata: x.$metadata, $fault: x.$fault };
  };

  const sdk = req(data.sdkPath) as typeof import('@aws-sdk/client-scheduler');

  // Credentials: asked of the main thread's client whenever the SDK's own memoisation wants them.
  let nextCredsId = 0;
  const credsWaiting = new Map<number, { resolve: (v: any) => void; reject: (e: unknown) => void }>();
  const credentials = () =>
    new Promise<any>((resolve, reject) => {
      const id = nextCredsId++;
      credsWaiting.set(id, { resolve, reject });
      post({ t: 'creds', id });
    });
  const client = new sdk.SchedulerClient({ ...(data.settings as object), credentials } as any);
  let calls = 0;
  // Like src/aws.ts countCalls: every attempt counted; throttling told at once (the main thread's limiter backs off on it).
  client.middlewareStack.add(
    (next: any) => async (args: any) => {
      calls += 1;
      try {
        const out = await next(args);
        if (out.response?.statusCode === 429) post({ t: 'throttle' });
        return out;
      } catch (e) {
        if (/^Throttl(ing|ed)Exception$/.test((e as { name?: string }).name ?? '')) post({ t: 'throttle' });
        throw e;
      }
    },
    { step: 'deserialize', name: 'opsctlCallStats', priority: 'low' },
  );
  const done = (id: number, rest: { tags?: Array<{ Key?: string; Value?: string }>; error?: WireError }) => {
    post({ t: 'done', id, calls, ...rest });
    calls = 0;
  };
  port.on('message', (m: ToWorker) => {
    if (m.t === 'read') {
      client.send(new sdk.ListTagsForResourceCommand({ ResourceArn: m.arn })).then(
        (out) => done(m.id, { tags: out.Tags ?? [] }),
        (e) => done(m.id, { error: toWire(e) }),
      );
    } else if (m.t === 'creds') {
      const w = credsWaiting.get(m.id);
      credsWaiting.delete(m.id);
      if (m.error) w?.reject(Object.assign(new Error(m.error.message), m.error));
      else w?.resolve(m.identity);
    }
  });
  post({ t: 'ready' });
}
