// A reading's active time: the time a reader spends with the case in front of them, across reloads. Time
// counts while the page is visible and between inputs (keys, pointer, wheel) at most IDLE_MS apart, so a case
// left open over lunch does not count its hour, and a reload does not start the clock again (before, the
// duration was the time since the last page load: 3 s for a case read ~3 minutes across reloads). Kept in
// localStorage per assignment: a reload in the same browser keeps it; it is cleared once the reading is in.

/** A pause longer than this between inputs counts as this much (the reader looking at the image). */
export const IDLE_MS = 60_000;

export interface Store {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class ActiveClock {
  private activeMs: number;
  private last: number | null;

  constructor(
    private readonly key: string,
    private readonly store: Store | null,
    private readonly now: () => number = () => Date.now(),
  ) {
    const saved = Number(store?.getItem(key) ?? 0);
    this.activeMs = Number.isFinite(saved) && saved > 0 ? saved : 0;
    this.last = now(); // opening the case is the first input
  }

  /** An input (or the page becoming visible again). */
  touch(): void {
    const t = this.now();
    if (this.last !== null) this.activeMs += Math.min(Math.max(t - this.last, 0), IDLE_MS);
    this.last = t;
  }

  /** The page is hidden (another tab, closed, reloading): count up to now, then stop the clock. */
  pause(): void {
    this.touch();
    this.last = null;
    this.save();
  }

  /** Seconds of active time so far, this visit included (to 0.1 s). */
  seconds(): number {
    const t = this.now();
    const open = this.last === null ? 0 : Math.min(Math.max(t - this.last, 0), IDLE_MS);
    return Math.round((this.activeMs + open) / 100) / 10;
  }

  save(): void {
    try {
      this.store?.setItem(this.key, String(Math.round(this.activeMs)));
    } catch {
      // storage full or disabled: the duration is then this visit's only
    }
  }

  clear(): void {
    this.store?.removeItem(this.key);
  }
}

export function storage(): Store | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}
