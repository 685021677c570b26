import { describe, expect, it } from "vitest";
import { ActiveClock, IDLE_MS, type Store } from "./activeTime";

function memory(): Store & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

describe("active reading time", () => {
  it("adds up across a reload, and not the time the page was hidden", () => {
    let t = 0;
    const store = memory();
    const first = new ActiveClock("a1", store, () => t);
    t = 30_000;
    first.touch();
    t = 90_000;
    first.pause(); // reload after 90 s of reading
    t = 95_000; // the new page loads
    const second = new ActiveClock("a1", store, () => t);
    t = 125_000;
    second.touch();
    expect(second.seconds()).toBe(120);
  });

  it("counts a long pause as IDLE_MS", () => {
    let t = 0;
    const clock = new ActiveClock("a2", memory(), () => t);
    t = 10 * 60_000;
    clock.touch();
    expect(clock.seconds()).toBe(IDLE_MS / 1000);
    t += 5_000;
    expect(clock.seconds()).toBe(IDLE_MS / 1000 + 5);
  });

  it("is cleared after submit, and survives a broken store", () => {
    let t = 0;
    const store = memory();
    const clock = new ActiveClock("a3", store, () => t);
    t = 1_000;
    clock.pause();
    expect(store.data.get("a3")).toBe("1000");
    clock.clear();
    expect(store.data.has("a3")).toBe(false);
    store.setItem("a4", "garbage");
    expect(new ActiveClock("a4", store, () => t).seconds()).toBe(0);
    expect(new ActiveClock("a5", null, () => t).seconds()).toBe(0);
  });
});
