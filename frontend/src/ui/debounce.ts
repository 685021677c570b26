/** Debounced async saver: `schedule()` after every change, `flush()` to save now (e.g. before leaving). */
export class Debounced {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> = Promise.resolve();
  private dirty = false;
  private saving = 0;

  constructor(
    private readonly save: () => Promise<void>,
    private readonly delayMs = 700,
    private readonly retryMs = 3000,
  ) {}

  schedule(): void {
    this.dirty = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), this.delayMs);
  }

  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.dirty) return this.running;
    this.dirty = false;
    this.running = this.running
      .then(() => {
        this.saving++;
        return this.save().finally(() => this.saving--);
      })
      .catch(() => {
        // Offline or a server error: keep the change and try again, unless a newer change already did.
        this.dirty = true;
        if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.retryMs);
      });
    return this.running;
  }

  /** Drop any unsaved change (after a submit, the draft is gone server-side). */
  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dirty = false;
  }

  get pending(): boolean {
    return this.dirty;
  }

  /** A save is on its way: its request may be cut off if the page goes now. */
  get busy(): boolean {
    return this.saving > 0;
  }
}
