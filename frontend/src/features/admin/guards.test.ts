import { describe, expect, it } from "vitest";
import type { Project } from "../../api";
import {
  deleteConfirmed,
  describeChanges,
  generateResult,
  parseConditions,
  removeMemberQuestion,
  removeMemberResult,
  settingsChanges,
} from "./guards";

describe("remove member", () => {
  it("names what will be cancelled before, and what was after", () => {
    expect(removeMemberQuestion({ username: "reader1", role: "reader", open_assignments: 3 })).toBe(
      "Remove reader1 as reader? Their 3 open assignments will be cancelled; their submitted readings stay.",
    );
    expect(removeMemberQuestion({ username: "reader1", role: "reader", open_assignments: 1 })).toContain(
      "Their 1 open assignment will be cancelled",
    );
    expect(removeMemberQuestion({ username: "r", role: "reader", open_assignments: 0 })).toContain(
      "no open assignment",
    );
    expect(removeMemberQuestion({ username: "a", role: "admin", open_assignments: 0 })).toBe(
      "Remove a as admin? Their assignments and readings are not affected.",
    );
    expect(removeMemberResult({ username: "reader1", role: "reader", cancelled_assignments: 2 })).toBe(
      "Removed reader1 as reader; 2 open assignments cancelled.",
    );
    expect(removeMemberResult({ username: "a", role: "admin", cancelled_assignments: 0 })).toBe(
      "Removed a as admin.",
    );
  });
});

describe("generate assignments", () => {
  it("says how many were created, and when none were", () => {
    const none = { created: 0, created_repeats: 0, created_crossover: 0, gold_cases: 0, loads: {} };
    expect(generateResult(none)).toBe("No assignment created: every case already has its readers.");
    expect(generateResult({ ...none, created: 4, created_repeats: 1, gold_cases: 1 })).toBe(
      "Created 4 assignments (1 blinded repeat, 1 gold case).",
    );
    expect(generateResult({ ...none, created: 1 })).toBe("Created 1 assignment.");
  });
});

const project = {
  id: 1,
  name: "SIJ MRI",
  description: "",
  scheme: "mri_sij v1",
  scheme_id: 1,
  modality: "MR",
  readers_per_case: 3,
  gold_fraction: 0,
  repeat_fraction: 0.1,
  washout_days: 14,
  washout_cases: 20,
  adjudication_threshold: 0.8,
  contour_disagreement_mm: 3,
  ai_aided_reads: false,
  reader_study_design: "sequential",
  readers_may_adjudicate_own_cases: false,
  deidentify: "site",
  deidentify_dates: "site",
  deidentify_clean_descriptors: null,
  created_at: "2026-12-05T00:00:00Z",
} as unknown as Project;

describe("project settings form", () => {
  it("sends only what changed, parsed", () => {
    const result = settingsChanges(project, {
      name: "SIJ MRI",
      readers_per_case: "2",
      repeat_fraction: "0.1",
      adjudication_threshold: "0.75",
      ai_aided_reads: "true",
      deidentify: "site",
      description: "  second wave ",
    });
    expect(result).toEqual({
      changes: {
        readers_per_case: 2,
        adjudication_threshold: 0.75,
        ai_aided_reads: true,
        description: "second wave",
      },
    });
    if ("changes" in result)
      expect(describeChanges(project, result.changes)).toBe(
        "description changed, readers per case 3 → 2, adjudication threshold 0.8 → 0.75, ai-aided reads off → on",
      );
  });

  it("refuses values the API would refuse, naming the field", () => {
    expect(settingsChanges(project, { readers_per_case: "0" })).toEqual({
      error: "Readers per case: must lie between 1 and 50.",
    });
    expect(settingsChanges(project, { readers_per_case: "2.5" })).toEqual({
      error: "Readers per case: enter a whole number.",
    });
    expect(settingsChanges(project, { gold_fraction: "" })).toEqual({
      error: "Gold fraction: enter a number.",
    });
    expect(settingsChanges(project, { name: "  " })).toEqual({ error: "Name: the project needs a name." });
  });
});

describe("delete project", () => {
  it("needs the exact name typed", () => {
    expect(deleteConfirmed("SIJ MRI", "SIJ MRI")).toBe(true);
    expect(deleteConfirmed(" SIJ MRI ", "SIJ MRI")).toBe(true);
    expect(deleteConfirmed("sij mri", "SIJ MRI")).toBe(false);
    expect(deleteConfirmed("", "SIJ MRI")).toBe(false);
  });
});

describe("reader-study conditions in the settings form", () => {
  const withChoices = {
    ...project,
    reader_study_conditions: [],
    study_conditions: [],
    condition_choices: ["unaided", "aided", "t1_only", "t1_stir"].map((name) => ({
      name,
      label: name,
      description: name,
      ai: name === "aided",
    })),
  } as unknown as Project;

  it("parses the conditions in order and sends them only when they changed", () => {
    expect(parseConditions("t1_only, t1_stir", ["t1_only", "t1_stir"])).toEqual({
      conditions: ["t1_only", "t1_stir"],
    });
    expect(parseConditions("  ", ["unaided"])).toEqual({ conditions: [] });
    const result = settingsChanges(withChoices, { reader_study_conditions: "t1_only,t1_stir" });
    expect(result).toEqual({ changes: { reader_study_conditions: ["t1_only", "t1_stir"] } });
    if ("changes" in result)
      expect(describeChanges(withChoices, result.changes)).toBe(
        "reader-study conditions default → t1_only, t1_stir",
      );
    expect(settingsChanges(withChoices, { reader_study_conditions: "" })).toEqual({ changes: {} });
  });

  it("refuses unknown, repeated or single conditions, naming the field", () => {
    expect(settingsChanges(withChoices, { reader_study_conditions: "t1_only, guess" })).toEqual({
      error: 'Reader-study conditions: unknown condition "guess"; known: unaided, aided, t1_only, t1_stir.',
    });
    expect(settingsChanges(withChoices, { reader_study_conditions: "aided aided" })).toEqual({
      error: "Reader-study conditions: a condition is named twice.",
    });
    expect(settingsChanges(withChoices, { reader_study_conditions: "aided" })).toEqual({
      error: "Reader-study conditions: a reader study compares 2 to 6 conditions.",
    });
  });
});
