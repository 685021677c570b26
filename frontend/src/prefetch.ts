// Answers asked for before the view that needs them runs: opening a case, the page asks for the case data
// (and the study's metadata as soon as its UIDs are known) alongside /api/auth/me/, instead of one after the
// other (issue 15, finding 12). The view takes each answer once; what no view took is dropped after the
// page's first view (main.ts), so nothing stale is ever shown.
const pending = new Map<string, Promise<unknown>>();

/** Start `load` under `key` (once: a second call gets the first promise). */
export function prefetch<T>(key: string, load: () => Promise<T>): Promise<T> {
  const known = pending.get(key) as Promise<T> | undefined;
  if (known) return known;
  const started = load();
  started.catch(() => undefined); // a failure is the taker's to see (and retry), not an unhandled rejection
  pending.set(key, started);
  return started;
}

/** The prefetched answer of `key` (taken: a second call loads afresh), else `load()`. A prefetch that failed
 * is tried again: the page may have asked before the session was there. */
export async function take<T>(key: string, load: () => Promise<T>): Promise<T> {
  const started = pending.get(key) as Promise<T> | undefined;
  if (!started) return load();
  pending.delete(key);
  try {
    return await started;
  } catch {
    return load();
  }
}

/** Whether an answer is waiting under `key`. */
export function prefetched(key: string): boolean {
  return pending.has(key);
}

/** Drop every answer no view took. */
export function forgetPrefetched(): void {
  pending.clear();
}
