import { describe, expect, it } from "vitest";
import { chooseVoi, headerWindow, percentileRange, plausibleWindow } from "./voi";

// A STIR slice like the demo's: background 12–40, tissue up to ~230, a few hot pixels at 248.
function stir(): Uint16Array {
  const px = new Uint16Array(256 * 256);
  for (let i = 0; i < px.length; i++) px[i] = i % 3 === 0 ? 20 : 40 + ((i * 7919) % 190);
  for (let i = 0; i < 50; i++) px[i * 13] = 248;
  return px;
}

describe("VOI from pixels", () => {
  it("takes percentiles, ignoring a few hot pixels", () => {
    const r = percentileRange(stir())!;
    expect(r.lower).toBe(20);
    expect(r.upper).toBeGreaterThan(220);
    expect(r.upper).toBeLessThan(240);
  });

  it("applies the rescale (CT in HU)", () => {
    const r = percentileRange(Uint16Array.from([0, 1000, 2000, 3000]), 1, -1024, 0, 1)!;
    expect(r).toEqual({ lower: -1024, upper: 1976 });
  });

  it("never returns an empty window", () => {
    const r = percentileRange(new Uint16Array(100).fill(7))!;
    expect(r.upper).toBeGreaterThan(r.lower);
    expect(percentileRange(new Uint16Array(0))).toBeNull();
  });

  it("rejects the demo's 12-bit header window for a STIR slice that stops at 250", () => {
    const data = percentileRange(stir())!;
    const header = headerWindow(2047, 4095);
    expect(plausibleWindow(header, data)).toBe(false);
    expect(chooseVoi(header, data)).toEqual({ range: data, source: "pixels" });
  });

  it("keeps a CT bone window over HU data, and a header window that fits", () => {
    const data = { lower: -1000, upper: 1500 };
    expect(chooseVoi(headerWindow(400, 1800), data)?.source).toBe("header");
    expect(chooseVoi(headerWindow([120, 400], [260, 1800]), { lower: 10, upper: 240 })?.source).toBe(
      "header",
    );
  });

  it("falls back to the pixels when the header has no window or one beside the data", () => {
    expect(chooseVoi(null, { lower: 0, upper: 100 })?.source).toBe("pixels");
    expect(chooseVoi(headerWindow(5000, 100), { lower: 0, upper: 100 })?.source).toBe("pixels");
    expect(headerWindow(40, 0)).toBeNull();
  });
});
