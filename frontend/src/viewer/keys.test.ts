import { describe, expect, it } from "vitest";
import { sliceStep } from "./keys";

type Target = { tagName: string; type?: string };
const key = (k: string, target: Target, mods: { ctrlKey?: boolean } = {}) =>
  sliceStep({
    key: k,
    altKey: false,
    ctrlKey: false,
    metaKey: false,
    target: target as unknown as EventTarget,
    ...mods,
  });

describe("slice keys", () => {
  const radio = { tagName: "INPUT", type: "radio" };
  it("scroll from a radio button, a select and the page", () => {
    expect(key("ArrowDown", radio)).toBe(1);
    expect(key("ArrowUp", { tagName: "SELECT" })).toBe(-1);
    expect(key("PageDown", { tagName: "BODY" })).toBe(1);
  });
  it("Home and End jump to the first and the last slice", () => {
    expect(key("Home", radio)).toBe(-Infinity);
    expect(key("End", { tagName: "BODY" })).toBe(Infinity);
    expect(key("End", { tagName: "INPUT", type: "text" })).toBe(0);
  });
  it("leave text fields, modifiers and other keys alone", () => {
    expect(key("ArrowDown", { tagName: "TEXTAREA" })).toBe(0);
    expect(key("ArrowUp", { tagName: "INPUT", type: "text" })).toBe(0);
    expect(key("ArrowDown", radio, { ctrlKey: true })).toBe(0);
    expect(key("1", radio)).toBe(0);
  });
});
