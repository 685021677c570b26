// Study/series UIDs → Cornerstone image ids, through Concord's same-origin DICOMweb endpoint (session auth).
import { prefetch, take } from "../prefetch";
import type { ImagePlane, Vec3 } from "../viewer/geometry";
import { sortPlanes, syncedSliceIndex } from "../viewer/geometry";

export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

export const DICOMWEB_ROOT = "/dicomweb";

export interface InstanceRef {
  sopUid: string;
  imageId: string;
  plane: ImagePlane;
  metadata: DicomJson;
}

export interface LoadedSeries {
  studyUid: string;
  seriesUid: string;
  description: string;
  modality: string;
  instances: InstanceRef[]; // sorted along the slice normal
  imageIds: string[];
  planes: ImagePlane[];
}

function values(m: DicomJson, tag: string): unknown[] {
  return m[tag]?.Value ?? [];
}
const str = (m: DicomJson, tag: string): string => String(values(m, tag)[0] ?? "");
const nums = (m: DicomJson, tag: string): number[] => values(m, tag).map(Number);

export function planeOf(m: DicomJson): ImagePlane | null {
  const ipp = nums(m, "00200032");
  const iop = nums(m, "00200037");
  const spacing = nums(m, "00280030");
  const rows = nums(m, "00280010")[0];
  const columns = nums(m, "00280011")[0];
  if (ipp.length !== 3 || iop.length !== 6 || spacing.length !== 2 || !rows || !columns) return null;
  return {
    ipp: ipp as Vec3,
    iop: iop as ImagePlane["iop"],
    pixelSpacing: spacing as [number, number],
    rows,
    columns,
  };
}

export function frameUrl(studyUid: string, seriesUid: string, sopUid: string, frame = 1): string {
  return `${globalThis.location?.origin ?? ""}${DICOMWEB_ROOT}/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}/frames/${frame}`;
}

/** What a reader sees instead of a black viewport while the image server (Orthanc) is down. */
export const IMAGE_SERVER_MESSAGE =
  "Image server unavailable: the images cannot be shown right now. Your grades are kept; try again in a moment.";

/** The API's answer while the image server is down: 502 with this code (see labeling/api/errors.py). */
export const IMAGE_SERVER_DOWN_CODE = "image_server_unavailable";

/** Thrown by the DICOMweb calls when the server behind /dicomweb/ cannot be reached. */
export class ImageServerUnavailable extends Error {
  constructor() {
    super(IMAGE_SERVER_MESSAGE);
    this.name = "ImageServerUnavailable";
  }
}

/** Whether an HTTP answer of /dicomweb/ means "the image server is down": the API's 502 with its code, or a
 * gateway in front of it that gave up (502/504 without our body). */
export function imageServerDown(status: number, body?: unknown): boolean {
  const code = body && typeof body === "object" ? (body as { code?: unknown }).code : undefined;
  if (code === IMAGE_SERVER_DOWN_CODE) return true;
  return (status === 502 || status === 504) && body === undefined; // not our JSON: a proxy's error page
}

/** The HTTP status behind a failed image load: Cornerstone rejects with the XMLHttpRequest (``status``), or
 * with an Error whose message names it ("... got status 502"); null when there is none (e.g. a decode error). */
export function failedLoadStatus(error: unknown): number | null {
  if (error && typeof error === "object") {
    const status = (error as { status?: unknown }).status;
    if (typeof status === "number" && status > 0) return status;
  }
  const text = error instanceof Error ? error.message : typeof error === "string" ? error : "";
  const found = /status (\d{3})\b/.exec(text);
  return found ? Number(found[1]) : null;
}

/** The message to show for a failed image load, or null when it is not the image server being down. */
export function imageLoadFailureMessage(error: unknown): string | null {
  if (error instanceof ImageServerUnavailable) return IMAGE_SERVER_MESSAGE;
  const status = failedLoadStatus(error);
  let body: unknown;
  const response =
    error && typeof error === "object" ? (error as { response?: unknown }).response : undefined;
  try {
    if (typeof response === "string") body = JSON.parse(response) as unknown;
    else if (response && typeof (response as ArrayBuffer).byteLength === "number")
      body = JSON.parse(new TextDecoder().decode(response as ArrayBuffer)) as unknown;
    else if (response && typeof response === "object") body = response; // responseType "json"
  } catch {
    body = undefined; // not JSON: the status alone decides
  }
  return status !== null && imageServerDown(status, body) ? IMAGE_SERVER_MESSAGE : null;
}

/** The text of a viewer that could not open its images: the image server being down says so plainly. */
export function imagesFailedText(error: unknown): string {
  return (
    imageLoadFailureMessage(error) ??
    `Images could not be loaded: ${error instanceof Error ? error.message : String(error)}`
  );
}

async function dicomJson(url: string): Promise<DicomJson[]> {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/dicom+json" } });
  if (!r.ok) {
    const body: unknown = await r.json().catch(() => undefined);
    if (imageServerDown(r.status, body)) throw new ImageServerUnavailable();
    throw new Error(`DICOMweb ${r.status} for ${url}`);
  }
  return (await r.json()) as DicomJson[];
}

const seriesUrl = (studyUid: string) => `${DICOMWEB_ROOT}/studies/${studyUid}/series`;
const studyMetadataUrl = (studyUid: string) => `${DICOMWEB_ROOT}/studies/${studyUid}/metadata`;

/** Ask for a study's series list and metadata now (as soon as its UID is known), for the view that shows it:
 * `studySeries` and `loadStudySeries` take these answers instead of asking again. */
export function prefetchStudy(studyUid: string, withSeries = false): void {
  void prefetch(studyMetadataUrl(studyUid), () => dicomJson(studyMetadataUrl(studyUid)));
  if (withSeries) void prefetch(seriesUrl(studyUid), () => dicomJson(seriesUrl(studyUid)));
}

/** Series-level QIDO: the study's series with their descriptions. */
export async function studySeries(
  studyUid: string,
): Promise<{ seriesUid: string; description: string; modality: string }[]> {
  const url = seriesUrl(studyUid);
  const rows = await take(url, () => dicomJson(url));
  return rows.map((m) => ({
    seriesUid: str(m, "0020000E"),
    description: str(m, "0008103E"),
    modality: str(m, "00080060"),
  }));
}

/** WADO-RS series metadata → sorted instances with wadors: image ids. */
export async function loadSeries(studyUid: string, seriesUid: string): Promise<LoadedSeries> {
  const rows = await dicomJson(`${DICOMWEB_ROOT}/studies/${studyUid}/series/${seriesUid}/metadata`);
  return seriesFromMetadata(studyUid, seriesUid, rows);
}

/** Several series of one study with a single study-level metadata request (one round trip, one scan). */
export async function loadStudySeries(studyUid: string, seriesUids: string[]): Promise<LoadedSeries[]> {
  const url = studyMetadataUrl(studyUid);
  const rows = await take(url, () => dicomJson(url));
  return seriesUids.map((uid) =>
    seriesFromMetadata(
      studyUid,
      uid,
      rows.filter((m) => str(m, "0020000E") === uid),
    ),
  );
}

export function seriesFromMetadata(studyUid: string, seriesUid: string, rows: DicomJson[]): LoadedSeries {
  const instances: InstanceRef[] = [];
  for (const m of rows) {
    const plane = planeOf(m);
    const sopUid = str(m, "00080018");
    if (!plane || !sopUid) continue;
    instances.push({
      sopUid,
      plane,
      metadata: m,
      imageId: `wadors:${frameUrl(studyUid, seriesUid, sopUid)}`,
    });
  }
  const sorted = sortPlanes(instances);
  return {
    studyUid,
    seriesUid,
    description: rows.length ? str(rows[0], "0008103E") : "",
    modality: rows.length ? str(rows[0], "00080060") : "",
    instances: sorted,
    imageIds: sorted.map((i) => i.imageId),
    planes: sorted.map((i) => i.plane),
  };
}

/** What Cornerstone's WADO-RS loader asks a frame as (its Accept header): the same request hits the cache. */
export const FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*";

/** The slice each series opens on, as the viewer picks it: `initialSlice` (else the middle) of the first
 * series, the nearest slice to it in the others. */
export function openingSlices(series: LoadedSeries[], initialSlice?: number): number[] {
  const first = series[0];
  if (!first) return [];
  const n = first.imageIds.length;
  const slice = Math.min(Math.max(initialSlice ?? Math.floor(n / 2), 0), Math.max(n - 1, 0));
  return series.map((s, i) => (i === 0 ? slice : syncedSliceIndex(first.planes, slice, s.planes)));
}

/** Ask for the frames of the slices a viewer opens on, now: they download while the viewer's chunk loads
 * and its viewports are built, and the viewer's own requests (same URL and Accept; frames are cacheable)
 * are answered from the browser's cache. Failures are left to the viewer's requests to report. */
export function prefetchOpeningFrames(series: LoadedSeries[], initialSlice?: number): void {
  if (!performance.getEntriesByName("concord:opening-frames", "mark").length)
    performance.mark("concord:opening-frames"); // where the time goes (bench_first_image --waterfall)
  openingSlices(series, initialSlice).forEach((slice, i) => {
    const inst = series[i].instances[slice];
    if (!inst) return;
    const url = frameUrl(series[i].studyUid, series[i].seriesUid, inst.sopUid);
    void fetch(url, { credentials: "same-origin", headers: { Accept: FRAME_ACCEPT }, priority: "high" })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  });
}
