// Study/series UIDs → Cornerstone image ids, through Concord's same-origin DICOMweb endpoint (session auth).
import type { ImagePlane, Vec3 } from "../viewer/geometry";
import { sortPlanes } from "../viewer/geometry";

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

async function dicomJson(url: string): Promise<DicomJson[]> {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/dicom+json" } });
  if (!r.ok) throw new Error(`DICOMweb ${r.status} for ${url}`);
  return (await r.json()) as DicomJson[];
}

/** Series-level QIDO: the study's series with their descriptions. */
export async function studySeries(
  studyUid: string,
): Promise<{ seriesUid: string; description: string; modality: string }[]> {
  const rows = await dicomJson(`${DICOMWEB_ROOT}/studies/${studyUid}/series`);
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
  const rows = await dicomJson(`${DICOMWEB_ROOT}/studies/${studyUid}/metadata`);
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
