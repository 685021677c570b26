import { describe, expect, it, vi } from "vitest";
import { pickSeries } from "../features/reading/series";
import {
  type DicomJson,
  IMAGE_SERVER_DOWN_CODE,
  IMAGE_SERVER_MESSAGE,
  ImageServerUnavailable,
  failedLoadStatus,
  imageLoadFailureMessage,
  imageServerDown,
  imagesFailedText,
  FRAME_ACCEPT,
  loadSeries,
  loadStudySeries,
  openingSlices,
  planeOf,
  prefetchOpeningFrames,
  prefetchStudy,
  seriesFromMetadata,
  studySeries,
} from "./index";

function instance(sop: string, z: number, series = "1.2.3"): DicomJson {
  return {
    "00080018": { vr: "UI", Value: [sop] },
    "0020000E": { vr: "UI", Value: [series] },
    "0008103E": { vr: "LO", Value: ["T1"] },
    "00080060": { vr: "CS", Value: ["MR"] },
    "00200032": { vr: "DS", Value: [-100, 20, z] },
    "00200037": { vr: "DS", Value: [1, 0, 0, 0, 0, -1] }, // coronal: normal along -y... row × column = (0, 1, 0)
    "00280030": { vr: "DS", Value: [0.8, 0.8] },
    "00280010": { vr: "US", Value: [320] },
    "00280011": { vr: "US", Value: [300] },
  };
}

describe("DICOMweb metadata", () => {
  it("reads the image plane module", () => {
    expect(planeOf(instance("1", 5))).toEqual({
      ipp: [-100, 20, 5],
      iop: [1, 0, 0, 0, 0, -1],
      pixelSpacing: [0.8, 0.8],
      rows: 320,
      columns: 300,
    });
  });

  it("refuses instances without geometry", () => {
    const m = instance("1", 0);
    delete m["00280030"];
    expect(planeOf(m)).toBeNull();
  });

  it("sorts instances along the slice normal and builds wadors frame ids", () => {
    // Coronal slices step along y (the normal); their order in the response is scrambled.
    const rows = [3, 1, 2].map((k) => {
      const m = instance(String(k), 0);
      m["00200032"] = { vr: "DS", Value: [-100, 20 + 3 * k, 0] };
      return m;
    });
    const s = seriesFromMetadata("9.8", "1.2.3", rows);
    expect(s.instances.map((i) => i.sopUid)).toEqual(["1", "2", "3"]);
    expect(s.imageIds[0]).toBe("wadors:/dicomweb/studies/9.8/series/1.2.3/instances/1/frames/1");
    expect(s.description).toBe("T1");
  });
});

describe("series choice", () => {
  const series = [
    { series_uid: "a", modality: "MR", description: "STIR", frame_of_reference_uid: "", n_instances: 16 },
    { series_uid: "b", modality: "MR", description: "T1", frame_of_reference_uid: "", n_instances: 16 },
    { series_uid: "c", modality: "CT", description: "CT SIJ", frame_of_reference_uid: "", n_instances: 96 },
  ];

  it("shows the scheme's sequences in the scheme's order", () => {
    expect(pickSeries(series, ["T1", "STIR"]).map((s) => s.series_uid)).toEqual(["b", "a"]);
  });

  it("falls back to the first series without sequences (CT)", () => {
    expect(pickSeries(series.slice(2), []).map((s) => s.series_uid)).toEqual(["c"]);
  });
});

describe("image server unavailable", () => {
  const apiBody = { detail: "image server unavailable: ...", code: IMAGE_SERVER_DOWN_CODE };
  const xhr = (status: number, body?: unknown) => ({
    status,
    response: body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body)).buffer,
  });

  it("recognises the API's 502 and a gateway that gave up, nothing else", () => {
    expect(imageServerDown(502, apiBody)).toBe(true);
    expect(imageServerDown(502)).toBe(true);
    expect(imageServerDown(504)).toBe(true);
    expect(imageServerDown(502, { detail: "the image store failed to answer" })).toBe(false);
    expect(imageServerDown(404, { detail: "not found" })).toBe(false);
    expect(imageServerDown(503, { detail: "the database is unavailable for a moment" })).toBe(false);
  });

  it("reads the status of a failed frame load, as Cornerstone reports it", () => {
    expect(failedLoadStatus(xhr(502))).toBe(502);
    expect(failedLoadStatus(new Error("Couldn't retrieve /dicomweb/x got status 504"))).toBe(504);
    expect(failedLoadStatus({ status: 0 })).toBeNull();
    expect(failedLoadStatus(new Error("decode failed"))).toBeNull();
  });

  it("says 'image server unavailable' instead of a black viewport, and only then", () => {
    expect(imageLoadFailureMessage(xhr(502, apiBody))).toBe(IMAGE_SERVER_MESSAGE);
    expect(imageLoadFailureMessage(new ImageServerUnavailable())).toBe(IMAGE_SERVER_MESSAGE);
    expect(imageLoadFailureMessage(xhr(404, { detail: "not found" }))).toBeNull();
    expect(imageLoadFailureMessage(xhr(502, { detail: "the image store failed to answer" }))).toBeNull();
    expect(IMAGE_SERVER_MESSAGE).toMatch(/^Image server unavailable/);
    expect(imagesFailedText(new ImageServerUnavailable())).toBe(IMAGE_SERVER_MESSAGE);
    expect(imagesFailedText(new Error("DICOMweb 404 for /x"))).toBe(
      "Images could not be loaded: DICOMweb 404 for /x",
    );
  });

  it("turns the metadata request's 502 into ImageServerUnavailable", async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(apiBody), { status: 502 }));
    vi.stubGlobal("fetch", fetchMock);
    try {
      await expect(loadSeries("1.2", "1.2.3")).rejects.toBeInstanceOf(ImageServerUnavailable);
      fetchMock.mockImplementationOnce(async () => new Response("{}", { status: 403 }));
      await expect(loadSeries("1.2", "1.2.3")).rejects.toThrow("DICOMweb 403 for");
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe("asked for early (issue 15, finding 12)", () => {
  const study = (n: number, series = "1.2.3") =>
    seriesFromMetadata(
      "9.8",
      series,
      Array.from({ length: n }, (_, k) => {
        const m = instance(String(k + 1), 0, series);
        m["00200032"] = { vr: "DS", Value: [-100, 20 + 3 * k, 0] };
        return m;
      }),
    );

  it("takes the prefetched metadata and series list instead of asking again", async () => {
    const rows = [instance("1", 0), instance("2", 3)];
    const fetchMock = vi.fn(async (url: string) =>
      url.endsWith("/series") ? new Response(JSON.stringify([rows[0]])) : new Response(JSON.stringify(rows)),
    );
    vi.stubGlobal("fetch", fetchMock);
    try {
      prefetchStudy("4.5", true);
      expect(fetchMock.mock.calls.map((c) => c[0])).toEqual([
        "/dicomweb/studies/4.5/metadata",
        "/dicomweb/studies/4.5/series",
      ]);
      expect((await studySeries("4.5"))[0].seriesUid).toBe("1.2.3");
      expect((await loadStudySeries("4.5", ["1.2.3"]))[0].instances).toHaveLength(2);
      expect(fetchMock).toHaveBeenCalledTimes(2); // no second request
      await loadStudySeries("4.5", ["1.2.3"]); // taken once: a later view asks afresh
      expect(fetchMock).toHaveBeenCalledTimes(3);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("opens on the middle slice, or the one asked for, the nearest in the other series", () => {
    const t1 = study(16);
    const coarse = seriesFromMetadata(
      "9.8",
      "4.5.6",
      [0, 1, 2, 3].map((k) => {
        const m = instance(`c${k}`, 0, "4.5.6");
        m["00200032"] = { vr: "DS", Value: [-100, 20 + 12 * k, 0] }; // every fourth slice of t1
        return m;
      }),
    );
    expect(openingSlices([t1, coarse])).toEqual([8, 2]);
    expect(openingSlices([t1, coarse], 13)).toEqual([13, 3]);
    expect(openingSlices([t1], 99)).toEqual([15]);
    expect(openingSlices([])).toEqual([]);
  });

  it("asks for the opening slices' frames as Cornerstone will (same URL and Accept)", () => {
    const fetchMock = vi.fn(async () => new Response(new ArrayBuffer(4)));
    vi.stubGlobal("fetch", fetchMock);
    try {
      prefetchOpeningFrames([study(4), study(4, "1.2.4")], 1);
      expect(fetchMock).toHaveBeenCalledTimes(2);
      const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
      expect(url).toBe("/dicomweb/studies/9.8/series/1.2.3/instances/2/frames/1");
      expect(init.headers).toEqual({ Accept: FRAME_ACCEPT });
      expect((fetchMock.mock.calls[1] as unknown as [string])[0]).toContain("/series/1.2.4/instances/2/");
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
