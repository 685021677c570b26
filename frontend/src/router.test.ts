import { describe, expect, it } from "vitest";
import { compile, match } from "./router";

describe("router", () => {
  const routes = [
    "/",
    "/projects/:id/worklist",
    "/read/:assignment",
    "/adjudicate/:project/:case/:joint/:region/:lesion",
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

  it("does not match other paths", () => {
    expect(match(routes, "/read")).toBeNull();
    expect(match(routes, "/projects/1/worklist/x")).toBeNull();
  });
});
