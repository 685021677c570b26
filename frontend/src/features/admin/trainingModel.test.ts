import { describe, expect, it } from "vitest";
import type { TrainingRun } from "../../api";
import {
  epochHistory,
  type EpochRow,
  fractionDone,
  goldSummary,
  kindsFor,
  newestRuns,
  parseConfig,
  progressLine,
  promotionAction,
} from "./trainingModel";

// As the run API serves it: one row per finished epoch, appended; a resumed run reports epoch 1 again.
const HISTORY: EpochRow[] = [
  { epoch: 0, loss: 0.9134, metrics: { val_rmse_mm: 4.25, val_loss: 0.88, epoch: 0, train_loss: 0.9134 } },
  { epoch: 1, loss: 0.5021, metrics: { val_rmse_mm: 2.5, val_loss: null } },
  { epoch: 1, loss: 0.4999, metrics: { val_rmse_mm: 2.4, val_loss: 1e-5 } },
  { epoch: 2, loss: null, metrics: {} },
];

describe("epochHistory", () => {
  it("keeps one row per epoch in order; a resumed epoch's later row wins", () => {
    expect(epochHistory(HISTORY)).toEqual([
      HISTORY[0],
      { epoch: 1, loss: 0.4999, metrics: { val_rmse_mm: 2.4, val_loss: 1e-5 } },
      { epoch: 2, loss: null, metrics: {} },
    ]);
  });

  it("is empty for a run that has not finished an epoch", () => {
    expect(epochHistory([])).toEqual([]);
    expect(epochHistory(undefined)).toEqual([]);
  });
});

describe("progressLine", () => {
  const history = epochHistory(HISTORY).slice(0, 2);

  it("shows the epoch (1-based) of the total, the loss, and the last finished epoch's metrics mid-epoch", () => {
    const line = progressLine(
      { state: "running", error: "" },
      { epoch: 2, epochs: 4, step: 3, loss: 0.41234, metrics: {} },
      history,
    );
    expect(line).toBe(
      "Epoch 3 of 4 · training loss 0.412 · validation joint-line error (RMSE) 2.400 mm · validation loss 0.00001",
    );
  });

  it("marks a finished epoch, and prefers the report's own metrics", () => {
    const line = progressLine(
      { state: "running", error: "" },
      { epoch: 3, epochs: 4, step: -1, loss: 0.3, metrics: { epoch: 3, train_loss: 0.3, val_rmse_mm: 1.9 } },
      history,
    );
    expect(line).toBe(
      "Epoch 4 of 4 done · training loss 0.300 · validation joint-line error (RMSE) 1.900 mm",
    );
  });

  it("names queued, preparing, finished and failed runs", () => {
    expect(progressLine({ state: "queued", error: "" }, {})).toMatch(/^Queued/);
    expect(progressLine({ state: "running", error: "" }, {})).toBe("Preparing the data snapshot");
    expect(
      progressLine({ state: "succeeded", error: "" }, { epoch: 1, epochs: 2, step: -1, loss: 0.2 }),
    ).toBe("Succeeded · Epoch 2 of 2 done · training loss 0.200");
    expect(progressLine({ state: "failed", error: "ValueError: no data" }, {})).toBe(
      "Failed · ValueError: no data",
    );
  });
});

describe("fractionDone", () => {
  it("clamps the reported fraction and completes a succeeded run", () => {
    expect(fractionDone({ state: "running" }, { fraction: 0.25 })).toBe(0.25);
    expect(fractionDone({ state: "running" }, { fraction: 3 })).toBe(1);
    expect(fractionDone({ state: "running" }, {})).toBe(0);
    expect(fractionDone({ state: "succeeded" }, { fraction: 0.5 })).toBe(1);
  });
});

describe("goldSummary", () => {
  it("puts the primary metric first, names metrics in words with units, and counts the gold cases", () => {
    expect(
      goldSummary({
        gold_metrics: {
          primary: "frac_below_2_76mm",
          n_gold: 2,
          rmse_mean_mm: 1.23456,
          frac_below_2_76mm: 0.9,
          rmse_p95_mm: null,
          per_output: { neg_rmse_left: -1 },
        },
      }),
    ).toBe(
      "joint slices with RMSE < 2.76 mm (fraction) 0.900 (primary) · mean joint-line error (RMSE) 1.235 mm · " +
        "95th-percentile joint-line error – · 2 gold case(s)",
    );
    expect(goldSummary({ gold_metrics: {} })).toBe("not evaluated");
  });
});

describe("promotionAction", () => {
  const versions = [
    { kind: "contour" as const, version: 3, status: "candidate" as const },
    { kind: "contour" as const, version: 2, status: "promoted" as const },
    { kind: "contour" as const, version: 1, status: "retired" as const },
    { kind: "lesions" as const, version: 1, status: "candidate" as const },
  ];
  it("rolls back to an older version, promotes a newer one, leaves the current one", () => {
    expect(promotionAction(versions[0], versions)).toBe("promote");
    expect(promotionAction(versions[1], versions)).toBe("promoted");
    expect(promotionAction(versions[2], versions)).toBe("roll back");
    expect(promotionAction(versions[3], versions)).toBe("promote"); // no promoted lesion model yet
  });
});

describe("kindsFor and parseConfig", () => {
  it("offers the kinds of the project's modality", () => {
    expect(kindsFor("MR")).toEqual(["contour", "lesions"]);
    expect(kindsFor("CT")).toEqual(["ctgrade"]);
  });

  it("accepts an empty text or a JSON object, and explains anything else", () => {
    expect(parseConfig("  ")).toEqual({});
    expect(parseConfig('{"epochs": 2, "device": "cpu"}')).toEqual({ epochs: 2, device: "cpu" });
    expect(parseConfig("[1]")).toMatch(/JSON object/);
    expect(parseConfig("{epochs: 2}")).toMatch(/not valid JSON/);
  });
});

describe("newestRuns", () => {
  it("shows a run as its detail, read after the list, has it (the table agrees with the card)", () => {
    const listed = [
      { id: 3, kind: "lesions", state: "queued" },
      { id: 1, kind: "contour", state: "running" },
    ] as TrainingRun[];
    const details = [{ id: 1, kind: "contour", state: "succeeded" }] as TrainingRun[];
    expect(newestRuns(listed, details).map((r) => [r.id, r.state])).toEqual([
      [3, "queued"],
      [1, "succeeded"],
    ]);
    expect(newestRuns(listed, [])).toEqual(listed);
  });
});
