/** Maps with at most `limit` calls in flight, results in input order. */
export async function mapWithConcurrency<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** At most `limit` tasks run at once; the rest queue in order (an adaptive limiter never told to back off). */
export function createLimiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  return createAdaptiveLimiter(limit);
}

export interface AdaptiveLimiter {
  <T>(task: () => Promise<T>): Promise<T>;
  /** The service said slow down: halve the calls in flight (at most once per round of calls). */
  throttled(): void;
  /** Calls allowed in flight now. */
  readonly limit: number;
  /** The lowest limit reached so far (the starting limit when never throttled). */
  readonly lowest: number;
}

/**
 * Like createLimiter, but backs off when the service throttles: halves the limit on a throttle
 * (once per round: the calls already in flight when it halved were sent at the old rate, so
 * their throttles do not count again), and adds one back after each round of calls without a
 * throttle, up to `max`. A round is as many completed calls as the limit was.
 */
export function createAdaptiveLimiter(max: number): AdaptiveLimiter {
  let limit = Math.max(1, max);
  let lowest = limit;
  let running = 0;
  let sinceChange = 0; // calls completed since the limit last changed
  let throttledThisRound = false;
  const queue: Array<() => void> = [];
  const next = () => {
    while (running < limit && queue.length) {
      running += 1;
      (queue.shift() as () => void)();
    }
  };
  const run = (<T>(task: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      queue.push(() => {
        task()
          .then(resolve, reject)
          .finally(() => {
            running -= 1;
            sinceChange += 1;
            if (sinceChange >= limit) {
              if (!throttledThisRound && limit < max) limit += 1;
              sinceChange = 0;
              throttledThisRound = false;
            }
            next();
          });
      });
      next();
    })) as AdaptiveLimiter;
  run.throttled = () => {
    if (throttledThisRound) return;
    throttledThisRound = true;
    limit = Math.max(1, Math.floor(limit / 2));
    lowest = Math.min(lowest, limit);
    // The calls already in flight were sent at the old rate: the next round starts after them.
    sinceChange = -running;
  };
  Object.defineProperty(run, 'limit', { get: () => limit });
  Object.defineProperty(run, 'lowest', { get: () => lowest });
  return run;
}
