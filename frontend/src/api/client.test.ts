import { describe, expect, it } from "vitest";
import { untilReady } from "./client";

describe("untilReady", () => {
  it("asks again while the worker computes, and stops at the first ready answer", async () => {
    const answers = [
      { status: "computing" },
      { status: "computing" },
      { status: "ready" },
      { status: "ready" },
    ];
    let asked = 0;
    const answer = await untilReady(async () => answers[asked++], 10, 1);
    expect(answer.status).toBe("ready");
    expect(asked).toBe(3);
  });

  it("gives up after its tries with the last answer", async () => {
    let asked = 0;
    const answer = await untilReady(async () => ({ status: "computing", n: ++asked }), 2, 1);
    expect(answer).toEqual({ status: "computing", n: 3 });
  });
});
