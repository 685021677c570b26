import { describe, expect, it } from "vitest";
import { earlyPlan } from "./early";

describe("what a page load starts before its view", () => {
  it("knows the views that show a case", () => {
    expect(earlyPlan("/read/Zy_8-q1J")).toEqual({ kind: "read", key: "Zy_8-q1J" });
    expect(earlyPlan("/read/Zy_8-q1J/")).toEqual({ kind: "read", key: "Zy_8-q1J" });
    expect(earlyPlan("/projects/3/adjudication/12/left/iliac_upper/bme")).toEqual({
      kind: "item",
      project: 3,
      caseId: 12,
      joint: "left",
      region: "iliac_upper",
      lesion: "bme",
    });
    expect(earlyPlan("/projects/3/adjudication/contours/12/left/7")).toEqual({ kind: "viewer" });
    expect(earlyPlan("/manage/projects/3/cases/12/preview")).toEqual({ kind: "viewer" });
  });

  it("leaves every other page to load the viewer when idle", () => {
    for (const path of ["/", "/login", "/projects/3/worklist", "/projects/3/adjudication", "/read/a/b"])
      expect(earlyPlan(path)).toEqual({ kind: "other" });
  });
});
