import { describe, expect, it } from "vitest";
import {
  caseSummary,
  entryHref,
  filtersFrom,
  newestOnly,
  nextEntryHref,
  queueQuery,
  STALE,
  type CaseInQueue,
} from "./queue";

const grade = (region: string, slice: number | null = 4, single = false) => ({
  kind: "grade" as const,
  joint: "left",
  region,
  lesion: "bme",
  consensus: 1,
  max_posterior: 0.5,
  values_read: single ? [1] : [0, 1],
  n_readers: single ? 1 : 2,
  single_read: single,
  reasons: [{ code: "disagreement" as const, text: "readers disagree: 0, 1" }],
  slice_index: slice,
  disagreement_mm: null,
});

const contour = {
  ...grade("x"),
  kind: "contour" as const,
  region: null,
  lesion: null,
  slice_index: 7,
  disagreement_mm: 5,
};

const queue: CaseInQueue[] = [
  {
    case_id: 3,
    case_label: "c3",
    n_items: 3,
    n_single_read: 0,
    lowest_posterior: 0.5,
    reasons: ["disagreement", "contour"],
    items: [grade("iliac_upper"), grade("sacral_upper", null), contour],
  },
  {
    case_id: 9,
    case_label: "c9",
    n_items: 1,
    n_single_read: 1,
    lowest_posterior: null,
    reasons: ["low_posterior"],
    items: [grade("iliac_lower", 2, true)],
  },
];

describe("adjudication queue", () => {
  it("builds the query string from the filters, leaving empty ones out", () => {
    expect(queueQuery({ lesion: "bme", joint: "", reason: "contour", excludeSingle: true })).toBe(
      "lesion=bme&reason=contour&single_read=exclude&limit=100&offset=0",
    );
    expect(queueQuery({})).toBe("limit=100&offset=0");
  });

  it("reads the filters back from the page's query string and ignores unknown reasons", () => {
    expect(filtersFrom("?reason=contour&joint=right&single_read=exclude")).toEqual({
      lesion: "",
      joint: "right",
      reason: "contour",
      excludeSingle: true,
    });
    expect(filtersFrom("?reason=mood").reason).toBe("");
  });

  it("links a grade to its traced slice and a contour dispute to the contour view", () => {
    expect(entryHref(1, 3, grade("iliac_upper"))).toBe(
      "/projects/1/adjudication/3/left/iliac_upper/bme?slice=4",
    );
    expect(entryHref(1, 3, grade("iliac_upper", null))).toBe(
      "/projects/1/adjudication/3/left/iliac_upper/bme",
    );
    expect(entryHref(1, 3, contour)).toBe("/projects/1/adjudication/contours/3/left/7");
  });

  it("goes on with the same case, then the next case", () => {
    expect(nextEntryHref(1, queue, "/projects/1/adjudication/3/left/iliac_upper/bme")).toBe(
      "/projects/1/adjudication/3/left/sacral_upper/bme",
    );
    expect(nextEntryHref(1, queue, "/projects/1/adjudication/contours/3/left/7")).toBe(
      "/projects/1/adjudication/3/left/iliac_upper/bme?slice=4",
    );
    expect(nextEntryHref(1, [queue[1]], "/projects/1/adjudication/3/left/iliac_upper/bme")).toBe(
      "/projects/1/adjudication/9/left/iliac_lower/bme?slice=2",
    );
    expect(nextEntryHref(1, [queue[1]], "/projects/1/adjudication/9/left/iliac_lower/bme")).toBeNull();
  });

  it("summarises a case", () => {
    expect(caseSummary(queue[0])).toBe("3 items in dispute");
    expect(caseSummary(queue[1])).toBe("0 items in dispute, 1 read once");
  });
});

describe("newestOnly", () => {
  const deferred = <T>() => {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };

  it("drops the answer of an earlier filter that arrives after the newer one", async () => {
    const newest = newestOnly<string>();
    const first = deferred<string>();
    const second = deferred<string>();
    const a = newest(first.promise);
    const b = newest(second.promise);
    second.resolve("lesion=bme");
    expect(await b).toBe("lesion=bme");
    first.resolve("all lesions");
    expect(await a).toBe(STALE);
  });

  it("drops an earlier request's failure but reports the newest one's", async () => {
    const newest = newestOnly<string>();
    const first = deferred<string>();
    const a = newest(first.promise);
    const b = newest(Promise.reject(new Error("server down")));
    first.reject(new Error("old"));
    expect(await a).toBe(STALE);
    await expect(b).rejects.toThrow("server down");
  });

  it("answers in order when the requests do", async () => {
    const newest = newestOnly<number>();
    expect(await newest(Promise.resolve(1))).toBe(1);
    expect(await newest(Promise.resolve(2))).toBe(2);
  });
});
