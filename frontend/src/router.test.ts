import { describe, expect, it } from "vitest";
import { compile, match } from "./router";

describe("router", () => {
  const routes = [
    "/",
    "/projects/:id/worklist",
    "/read/:assignment",
    "/adjudicate/:project/:case/:joint/:region/:lesion",
    "/projects/:id/readings/:key/:version",
  ].map(compile);

  it("matches paths and extracts parameters", () => {
    expect(match(routes, "/")).toEqual([0, {}]);
    expect(match(routes, "/projects/12/worklist")).toEqual([1, { id: "12" }]);
    expect(match(routes, "/projects/12/worklist/")).toEqual([1, { id: "12" }]);
    expect(match(routes, "/adjudicate/1/2/left/iliac_upper/bme")?.[1]).toEqual({
      project: "1",
      case: "2",
      joint: "left",
      region: "iliac_upper",
      lesion: "bme",
    });
  });

  it("opens readings by the assignment's opaque key (URL-safe base64), never by an id", () => {
    expect(match(routes, "/read/AUEo4fec3S2i9R0lc6mP6A")).toEqual([
      2,
      { assignment: "AUEo4fec3S2i9R0lc6mP6A" },
    ]);
    expect(match(routes, "/read/-_x9Zq0rT1uv2WX3yz4AbC")?.[1]).toEqual({
      assignment: "-_x9Zq0rT1uv2WX3yz4AbC",
    });
    expect(match(routes, "/projects/3/readings/AUEo4fec3S2i9R0lc6mP6A/2")).toEqual([
      4,
      { id: "3", key: "AUEo4fec3S2i9R0lc6mP6A", version: "2" },
    ]);
    expect(match(routes, "/projects/3/readings/AUEo4fec3S2i9R0lc6mP6A")).toBeNull();
  });

  it("does not match other paths", () => {
    expect(match(routes, "/read")).toBeNull();
    expect(match(routes, "/projects/1/worklist/x")).toBeNull();
  });
});
