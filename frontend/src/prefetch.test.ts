import { describe, expect, it } from "vitest";
import { forgetPrefetched, prefetch, prefetched, take } from "./prefetch";

describe("prefetch", () => {
  it("hands a prefetched answer to the first taker only", async () => {
    let calls = 0;
    const load = () => Promise.resolve(++calls);
    void prefetch("a", load);
    void prefetch("a", load); // started once
    expect(await take("a", load)).toBe(1);
    expect(await take("a", load)).toBe(2); // taken: a fresh load
    expect(calls).toBe(2);
  });

  it("loads again when the prefetch failed", async () => {
    void prefetch("b", () => Promise.reject(new Error("401")));
    expect(await take("b", () => Promise.resolve("fresh"))).toBe("fresh");
  });

  it("drops what no view took", async () => {
    void prefetch("c", () => Promise.resolve("old"));
    forgetPrefetched();
    expect(prefetched("c")).toBe(false);
    expect(await take("c", () => Promise.resolve("new"))).toBe("new");
  });
});
