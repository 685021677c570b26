// The adjudication queue by case: filters as a query string, links to each item in dispute, and which item
// comes next after a decision (pure functions, tested in queue.test.ts).
import type { S } from "../../api";

export type CaseQueuePage = S["CaseQueuePageOutput"];
export type CaseInQueue = S["CaseQueueOutput"];
export type QueueEntry = S["CaseQueueItemOutput"];
export type Reason = S["QueueReasonEnum"];

export interface QueueFilters {
  lesion?: string;
  joint?: string;
  reason?: Reason | "";
  /** true: leave out items that only one reader read */
  excludeSingle?: boolean;
}

export const REASON_LABELS: Record<Reason, string> = {
  low_posterior: "Low posterior",
  disagreement: "Reader disagreement",
  contour: "Contour",
};

/** The case queue's query string for ``filters`` (empty filters left out). */
export function queueQuery(filters: QueueFilters, limit = 100, offset = 0): string {
  const q = new URLSearchParams();
  if (filters.lesion) q.set("lesion", filters.lesion);
  if (filters.joint) q.set("joint", filters.joint);
  if (filters.reason) q.set("reason", filters.reason);
  if (filters.excludeSingle) q.set("single_read", "exclude");
  q.set("limit", String(limit));
  q.set("offset", String(offset));
  return q.toString();
}

/** Filters from the page's own query string (so that a filtered queue can be linked and reloaded). */
export function filtersFrom(search: string): QueueFilters {
  const q = new URLSearchParams(search);
  const reason = q.get("reason") ?? "";
  return {
    lesion: q.get("lesion") ?? "",
    joint: q.get("joint") ?? "",
    reason: (reason in REASON_LABELS ? reason : "") as Reason | "",
    excludeSingle: q.get("single_read") === "exclude",
  };
}

/** Where one item in dispute is decided: a grade opens on the slice its joint was traced on; a contour
 * dispute opens the contour view of its slice. */
export function entryHref(projectId: number, caseId: number, e: QueueEntry): string {
  if (e.kind === "contour")
    return `/projects/${projectId}/adjudication/contours/${caseId}/${e.joint}/${e.slice_index}`;
  const slice = e.slice_index === null || e.slice_index === undefined ? "" : `?slice=${e.slice_index}`;
  return `/projects/${projectId}/adjudication/${caseId}/${e.joint}/${e.region}/${e.lesion}${slice}`;
}

/** The next item to decide after ``currentPath``: the next item of the same case, else the first of the
 * next case (single reads come last in the queue already); null when nothing is left. */
export function nextEntryHref(projectId: number, cases: CaseInQueue[], currentPath: string): string | null {
  const hrefs = cases.flatMap((c) => c.items.map((e) => entryHref(projectId, c.case_id, e)));
  const path = (href: string) => href.split("?")[0];
  const rest = hrefs.filter((href) => path(href) !== path(currentPath));
  const caseOf = (href: string) =>
    href.split("/")[4] === "contours" ? href.split("/")[5] : href.split("/")[4];
  const here = caseOf(currentPath);
  return rest.find((href) => caseOf(href) === here) ?? rest[0] ?? null;
}

/** "2 items in dispute, 1 read once" */
export function caseSummary(c: CaseInQueue): string {
  const disputed = c.n_items - c.n_single_read;
  const parts = [`${disputed} item${disputed === 1 ? "" : "s"} in dispute`];
  if (c.n_single_read) parts.push(`${c.n_single_read} read once`);
  return parts.join(", ");
}

/** What ``newestOnly`` answers for a request that a newer one has overtaken. */
export const STALE: unique symbol = Symbol("stale");

/** Keeps a page's answers in the order its requests were made: each call wraps one request, and once a newer
 * request has started, the older one's answer (or failure) is STALE, however late it arrives. A queue filtered
 * twice in quick succession thus never shows the first filter's cases under the second filter. */
export function newestOnly<T>(): (answer: Promise<T>) => Promise<T | typeof STALE> {
  let newest = 0;
  return async (answer) => {
    const mine = ++newest;
    try {
      const value = await answer;
      return mine === newest ? value : STALE;
    } catch (e) {
      if (mine !== newest) return STALE;
      throw e;
    }
  };
}
