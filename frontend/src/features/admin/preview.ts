// Case preview: the case's images in the viewer, nothing else (admins check an import; the viewer's demo page).
import { api } from "../../api";
import { imagesFailedText, loadStudySeries, studySeries } from "../../dicomweb";
import type { Params } from "../../router";
import { h, message } from "../../ui/dom";
import { sliceStep } from "../../viewer/keys";
import { viewerReady } from "../../viewer/load";
import type { Viewer } from "../../viewer/viewer";
import { imageToolbar } from "../shared/imageTools";

export async function casePreviewView(outlet: HTMLElement, params: Params): Promise<() => void> {
  const openedAt = performance.now();
  document.body.classList.add("reading-room");
  const projectId = Number(params.id);
  const caseId = Number(params.case);
  const viewerBox = h("div", { class: "viewer-box", "data-testid": "viewer" });
  const sliceLabel = h("span", { class: "slice", "aria-live": "polite" });
  const presetSelect = h("select", { "aria-label": "Window preset" });
  let viewer: Viewer | null = null;
  const main = h(
    "main",
    { class: "reading preview", id: "main" },
    h(
      "header",
      { class: "case-header" },
      h("a", { href: `/manage/projects/${projectId}`, class: "back" }, "← Project"),
      h("h1", null, "Case preview"),
    ),
    h(
      "section",
      { class: "images", "aria-label": "Images" },
      imageToolbar((delta) => void viewer?.step(delta), sliceLabel, presetSelect),
      viewerBox,
    ),
  );
  outlet.append(main);
  const onKey = (e: KeyboardEvent) => {
    const step = sliceStep(e);
    if (!step) return;
    e.preventDefault(); // the focused preset select would change value
    void viewer?.step(step);
  };
  document.addEventListener("keydown", onKey);
  const cleanup = () => {
    document.removeEventListener("keydown", onKey);
    viewer?.destroy();
  };
  try {
    const found = (await api.cases(projectId)).find((c) => c.id === caseId);
    if (!found) throw new Error("no such case in this project");
    main.querySelector("h1")!.textContent = `Case preview: ${found.label || found.study_uid}`;
    const all = (await studySeries(found.study_uid)).filter(
      (x) => x.modality !== "SEG" && x.modality !== "SR",
    );
    const order = ["T1", "STIR"];
    const mri = all.filter((x) => order.includes(x.description));
    const chosen = mri.length
      ? mri.sort((a, b) => order.indexOf(a.description) - order.indexOf(b.description))
      : all.slice(0, 1);
    const loaded = await loadStudySeries(
      found.study_uid,
      chosen.map((x) => x.seriesUid),
    );
    const { Viewer } = await viewerReady();
    viewer = await Viewer.create(viewerBox, loaded, { modality: loaded[0]?.modality || "MR", openedAt });
    const v = viewer;
    (window as unknown as { __concordViewer?: Viewer }).__concordViewer = v;
    v.presets.forEach((p) => presetSelect.append(h("option", { value: p.id }, p.label)));
    presetSelect.onchange = () => v.applyPreset(presetSelect.selectedIndex);
    const update = () => (sliceLabel.textContent = `Slice ${v.slice + 1} / ${v.sliceCount}`);
    v.onSlice(update);
    update();
  } catch (e) {
    viewerBox.append(message(imagesFailedText(e), "error"));
  }
  return cleanup;
}
