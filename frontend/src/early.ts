// What a page load starts before its first view runs (issue 15, finding 12). Opening a case cold used to be a
// chain: the whole bundle (Cornerstone included) parsed, then /api/auth/me/, then the case data, then the
// study's metadata, then the viewer's code ran, then the first frame was asked for. Now, for a view that
// shows images, the viewer's chunk, the case data and (once its UIDs are known) the study's metadata are
// asked for at once, alongside /api/auth/me/; the views take the answers (prefetch.ts).
import { api, type NextCase } from "./api";
import { prefetchStudy } from "./dicomweb";
import { prefetch } from "./prefetch";
import { loadViewerWhenIdle, viewerReady } from "./viewer/load";

const READ = /^\/read\/([^/]+)\/?$/;
const ITEM = /^\/projects\/(\d+)\/adjudication\/(\d+)\/([^/]+)\/([^/]+)\/([^/]+)\/?$/;
const OTHER_VIEWERS = [
  /^\/projects\/\d+\/adjudication\/contours\/\d+\/[^/]+\/\d+\/?$/,
  /^\/manage\/projects\/\d+\/cases\/\d+\/preview\/?$/,
];

export const assignmentKey = (key: string) => `assignment:${key}`;
export const draftKey = (key: string) => `draft:${key}`;
export const itemKey = (project: number, caseId: number, joint: string, region: string, lesion: string) =>
  `item:${project}/${caseId}/${joint}/${region}/${lesion}`;

export type Plan =
  | { kind: "read"; key: string }
  | { kind: "item"; project: number; caseId: number; joint: string; region: string; lesion: string }
  | { kind: "viewer" } // another view with images: only the viewer's chunk
  | { kind: "other" };

/** What the page at `pathname` will need early. */
export function earlyPlan(pathname: string): Plan {
  const read = READ.exec(pathname);
  if (read) return { kind: "read", key: decodeURIComponent(read[1]) };
  const item = ITEM.exec(pathname);
  if (item) {
    const [joint, region, lesion] = [item[3], item[4], item[5]].map(decodeURIComponent);
    return { kind: "item", project: Number(item[1]), caseId: Number(item[2]), joint, region, lesion };
  }
  return OTHER_VIEWERS.some((r) => r.test(pathname)) ? { kind: "viewer" } : { kind: "other" };
}

/** Hand the case "Next case" just opened, and its draft, to the reading view, which then asks for neither,
 * and ask for its study's metadata now, as a page load on the case does. */
export function offerOpenedCase(opened: NextCase): void {
  const { draft, ...assignment } = opened;
  void prefetch(assignmentKey(opened.key), () => Promise.resolve(assignment));
  void prefetch(draftKey(opened.key), () => Promise.resolve(draft));
  prefetchStudy(opened.study_uid);
}

/** Start what the view at `pathname` will ask for; any other page loads the viewer's chunk when idle. */
export function startEarly(pathname: string): void {
  const plan = earlyPlan(pathname);
  if (plan.kind === "other") {
    loadViewerWhenIdle();
    return;
  }
  void viewerReady().catch(() => undefined); // the view reports a failure when it needs the viewer
  if (plan.kind === "read") {
    const { key } = plan;
    void prefetch(draftKey(key), () => api.draft(key));
    prefetch(assignmentKey(key), () => api.assignment(key))
      .then((a) => prefetchStudy(a.study_uid))
      .catch(() => undefined);
  } else if (plan.kind === "item") {
    const { project, caseId, joint, region, lesion } = plan;
    prefetch(itemKey(project, caseId, joint, region, lesion), () =>
      api.item(project, caseId, joint, region, lesion),
    )
      .then((i) => prefetchStudy(i.study_uid, true))
      .catch(() => undefined);
  }
}
