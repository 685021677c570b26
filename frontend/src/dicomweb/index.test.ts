import { describe, expect, it } from "vitest";
import { pickSeries } from "../features/reading/series";
import { type DicomJson, planeOf, seriesFromMetadata } from "./index";

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
