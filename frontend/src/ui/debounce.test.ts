import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Debounced } from "./debounce";

describe("Debounced", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("saves once after a burst of changes", async () => {
    const save = vi.fn(() => Promise.resolve());
    const d = new Debounced(save, 500);
    d.schedule();
    d.schedule();
    vi.advanceTimersByTime(400);
    d.schedule();
    expect(save).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(500);
    expect(save).toHaveBeenCalledTimes(1);
  });

  it("flushes immediately and retries after a failed save", async () => {
    let fail = true;
    const save = vi.fn(() => (fail ? Promise.reject(new Error("offline")) : Promise.resolve()));
    const d = new Debounced(save, 500);
    d.schedule();
    await d.flush();
    expect(d.pending).toBe(true);
    fail = false;
    await d.flush();
    expect(save).toHaveBeenCalledTimes(2);
    expect(d.pending).toBe(false);
  });

  it("is busy while a save is on its way, not pending, so that a page hide still sends the change", async () => {
    let done: () => void = () => undefined;
    const d = new Debounced(() => new Promise<void>((resolve) => (done = resolve)), 500);
    d.schedule();
    const flushed = d.flush();
    await Promise.resolve();
    expect([d.pending, d.busy]).toEqual([false, true]);
    done();
    await flushed;
    expect([d.pending, d.busy]).toEqual([false, false]);
  });
});
