// A contour dispute: every reader's joint line on the slice where they disagree, the consensus line, and the
// decision: one reader's line, the consensus line, or a final line drawn here (click to add points, drag to
// move, right-click to delete, as when reading).
import { api } from "../../api";
import { ApiError } from "../../api/client";
import { imagesFailedText, loadStudySeries } from "../../dicomweb";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { READER_COLOURS } from "../../ui/charts";
import { fmt, h, loadingIndicator, message, s } from "../../ui/dom";
import { orientSuperiorFirst, round3, type Vec3 } from "../../viewer/geometry";
import { sliceStep } from "../../viewer/keys";
import { viewerReady } from "../../viewer/load";
import type { Viewer } from "../../viewer/viewer";
import { attachContourEditing, ContourStore, contourPainter } from "../shared/contours";
import { imageToolbar } from "../shared/imageTools";
import { label } from "../shared/labels";
import { nextEntryHref, queueQuery } from "./queue";

const CONSENSUS_COLOUR = "#ffffff";

export async function contourDisputeView(outlet: HTMLElement, params: Params): Promise<() => void> {
  const openedAt = performance.now();
  document.body.classList.add("reading-room");
  const projectId = Number(params.id);
  const main = h("main", { class: "reading", id: "main" });
  outlet.append(main);
  let dispute: Awaited<ReturnType<typeof api.contourDispute>>;
  try {
    dispute = await api.contourDispute(projectId, Number(params.case), params.joint, Number(params.slice));
  } catch (e) {
    main.append(message(e instanceof ApiError ? e.detail : String(e), "error"));
    return () => undefined;
  }
  const d = dispute;
  const colour = (i: number) => READER_COLOURS[i % READER_COLOURS.length];
  const drawn = new ContourStore();
  const state = { joint: d.joint, editing: false };
  let viewer: Viewer | null = null;
  const viewerBox = h("div", { class: "viewer-box", "data-testid": "viewer" });
  const sliceLabel = h("span", { class: "slice" });
  const presetSelect = h("select", {
    "aria-label": "Window preset",
    onchange: () => viewer?.applyPreset(presetSelect.selectedIndex),
  });
  const panel = h("aside", { class: "grading", "aria-label": "Decision" });
  const errors = h("div", { class: "errors", "aria-live": "assertive" });
  const drawInfo = h("p", { class: "sub", "data-testid": "drawn-points" });
  const resetView = () => {
    if (!viewer) return;
    viewer.resetView();
    viewer.applyPreset(0);
    presetSelect.selectedIndex = 0;
  };
  main.append(
    h(
      "header",
      { class: "case-header" },
      h("a", { href: `/projects/${projectId}/adjudication`, class: "back" }, "← Queue"),
      h("h1", null, `Case ${d.case_label}: ${label(d.joint)} joint line, slice ${d.slice_index + 1}`),
    ),
    h(
      "div",
      { class: "reading-body" },
      h(
        "section",
        { class: "images", "aria-label": "Images" },
        imageToolbar(
          (delta) => void viewer?.step(delta),
          sliceLabel,
          presetSelect,
          h("button", { type: "button", onclick: () => resetView() }, "Reset view"),
        ),
        viewerBox,
      ),
      panel,
    ),
    errors,
  );

  panel.append(
    h("h2", null, "Lines on this slice"),
    h(
      "p",
      { class: "sub", "data-testid": "contour-threshold" },
      d.disagreement_mm !== null
        ? `The farthest line lies ${fmt(d.disagreement_mm, 1)} mm from the consensus, above the threshold ${fmt(d.threshold_mm, 1)} mm.`
        : `Threshold ${fmt(d.threshold_mm, 1)} mm.`,
    ),
    h(
      "table",
      { class: "readers" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Line", "Mean to consensus (mm)", "95th pct (mm)"].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        null,
        d.readers.map((r, i) =>
          h(
            "tr",
            null,
            h(
              "td",
              null,
              h("span", { class: "swatch", style: { background: colour(i) } }),
              `${r.reader} (session ${r.session})`,
            ),
            h("td", null, fmt(r.mean_mm, 1)),
            h("td", null, fmt(r.p95_mm, 1)),
          ),
        ),
        d.consensus
          ? h(
              "tr",
              null,
              h(
                "td",
                null,
                h("span", { class: "swatch", style: { background: CONSENSUS_COLOUR } }),
                "Consensus (dashed)",
              ),
              h("td", null, "–"),
              h("td", null, "–"),
            )
          : null,
      ),
    ),
  );
  const current = d.decisions.find((x) => x.current);
  if (current)
    panel.append(
      h(
        "p",
        { class: "sub" },
        `Earlier decision: ${current.choice === "reader" ? `${current.reader}'s line` : current.choice === "consensus" ? "the consensus line" : "a drawn line"}.`,
      ),
    );

  // Decision: nothing pre-set.
  const name = "line";
  const option = (value: string, text: string, attrs: Record<string, string> = {}) =>
    h("label", { class: "opt" }, h("input", { type: "radio", name, value, ...attrs }), ` ${text}`);
  const reason = h("textarea", { id: "reason", required: true });
  const clear = h(
    "button",
    {
      type: "button",
      onclick: () => {
        drawn.set(d.joint, d.slice_index, d.series_uid, []);
        viewer?.repaint();
        updateDrawn();
      },
    },
    "Clear drawn line",
  );
  const updateDrawn = () => {
    const n = drawn.get(d.joint, d.slice_index).length;
    drawInfo.textContent = state.editing
      ? `Drawing: ${n} point${n === 1 ? "" : "s"}; click along the joint line on slice ${d.slice_index + 1}.`
      : "";
  };
  const setDrawing = (on: boolean) => {
    state.editing = on;
    viewerBox.classList.toggle("contour-mode", on);
    viewer?.setInteractive(on);
    viewer?.repaint();
    updateDrawn();
  };
  const form = h(
    "form",
    {
      class: "decision",
      onchange: () => setDrawing(chosen()?.value === "drawn"),
      onsubmit: async (e: Event) => {
        e.preventDefault();
        errors.replaceChildren();
        const pick = chosen();
        if (!pick) return errors.append(message("Choose the final line.", "error"));
        if (!reason.value.trim()) return errors.append(message("Give a reason.", "error"));
        const body: Parameters<typeof api.adjudicateContour>[1] = {
          case_id: d.case_id,
          joint: d.joint,
          slice_index: d.slice_index,
          choice: pick.value.startsWith("reader:") ? "reader" : (pick.value as "consensus" | "drawn"),
          reader: "",
          reason: reason.value.trim(),
        };
        if (pick.value.startsWith("reader:")) body.reader = pick.value.slice("reader:".length);
        if (pick.value === "drawn") {
          const points = drawn.get(d.joint, d.slice_index);
          if (points.length < 2) return errors.append(message("Draw the line: at least 2 points.", "error"));
          body.points_mm = orientSuperiorFirst(points).map(round3);
        }
        try {
          await api.adjudicateContour(projectId, body);
          const queue = await api.caseQueue(projectId, queueQuery({}));
          navigate(
            nextEntryHref(projectId, queue.results, location.pathname) ??
              `/projects/${projectId}/adjudication`,
          );
        } catch (err) {
          errors.append(message(err instanceof ApiError ? err.detail : String(err), "error"));
        }
      },
    },
    h("h2", null, "Decision"),
    h(
      "fieldset",
      { class: "choice" },
      h("legend", null, "Final joint line"),
      [...new Set(d.readers.map((r) => r.reader))].map((r) => option(`reader:${r}`, `${r}'s line`)),
      d.consensus ? option("consensus", "The consensus line") : null,
      option("drawn", "Draw the final line"),
    ),
    drawInfo,
    clear,
    h("label", { for: "reason" }, "Reason"),
    reason,
    h("p", null, h("button", { type: "submit", class: "primary" }, "Record decision and go to next")),
    h("p", { class: "sub" }, "Keys: Ctrl+Enter records, ↑/↓ change slice, W next window preset, R reset."),
  );
  const chosen = () => form.querySelector<HTMLInputElement>(`input[name=${name}]:checked`);
  panel.append(form);

  // Keys work from the start: a fast adjudicator can decide while the images are still loading.
  const onKey = (e: KeyboardEvent) => {
    if (!main.isConnected) return; // left while loading: the cleanup comes once the viewer is made
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
      return;
    }
    const step = sliceStep(e);
    if (step) {
      e.preventDefault();
      void viewer?.step(step);
      return;
    }
    if ((e.target as HTMLElement).tagName === "TEXTAREA" || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "w" || e.key === "W") {
      if (viewer)
        presetSelect.selectedIndex = viewer.presets.indexOf(viewer.applyPreset(viewer.presetIndex + 1));
    } else if (e.key === "r" || e.key === "R") resetView();
  };
  document.addEventListener("keydown", onKey);

  const imagesShown = loadingIndicator(viewerBox);
  let detach: () => void = () => undefined;
  try {
    const loaded = await loadStudySeries(d.study_uid, [d.series_uid]);
    const { Viewer } = await viewerReady();
    viewer = await Viewer.create(viewerBox, loaded, {
      modality: loaded[0]?.modality || "MR",
      openedAt,
      initialSlice: d.slice_index,
    });
    const v = viewer;
    imagesShown();
    v.presets.forEach((p) => presetSelect.append(h("option", { value: p.id }, p.label)));
    (window as unknown as { __concordViewer?: Viewer }).__concordViewer = v;
    const update = () => (sliceLabel.textContent = `Slice ${v.slice + 1} / ${v.sliceCount}`);
    v.onSlice(update);
    update();
    v.addPainter((pane, slice) => {
      if (slice !== d.slice_index) return [];
      const line = (pts: number[][], attrs: Record<string, string>) =>
        s("polyline", {
          points: pts.map((p) => v.toCanvas(pane, p as Vec3).join(",")).join(" "),
          class: "contour",
          ...attrs,
        });
      return [
        ...d.readers.map((r, i) => line(r.points_mm, { stroke: colour(i), "data-reader": r.reader })),
        ...(d.consensus
          ? [
              line(d.consensus, {
                stroke: CONSENSUS_COLOUR,
                "stroke-dasharray": "6 4",
                "data-consensus": "1",
              }),
            ]
          : []),
      ];
    });
    v.addPainter(contourPainter(drawn, v, () => state));
    detach = attachContourEditing(v, drawn, () => state, updateDrawn);
  } catch (e) {
    imagesShown();
    viewerBox.append(message(imagesFailedText(e), "error"));
  }
  return () => {
    document.removeEventListener("keydown", onKey);
    detach();
    viewer?.destroy();
  };
}
