// The reading view: images (MRI: T1 + STIR side by side; CT: one viewport), the grading grid, open
// contours per joint and slice (MRI), drafts saved as the reader works, submit → next case.
import { api } from "../../api";
import { ApiError } from "../../api/client";
import type { AssignmentDetail } from "../../api";
import type { AiPrediction } from "../../api/types";
import { loadStudySeries, type LoadedSeries } from "../../dicomweb";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { Debounced } from "../../ui/debounce";
import { bars } from "../../ui/charts";
import { h, loadingIndicator, message, s, toast, typing } from "../../ui/dom";
import { ensureCornerstone } from "../../viewer/cornerstone";
import { nearestSlice, type Vec3 } from "../../viewer/geometry";
import { sliceStep } from "../../viewer/keys";
import { planeCut } from "../../viewer/mpr";
import { Reformat } from "../../viewer/reformat";
import { Viewer } from "../../viewer/viewer";
import { aiConfidenceText, aiContours, aiContoursOnSlice, aiForForm } from "../adjudication/ai";
import { ActiveClock, storage } from "./activeTime";
import { attachContourEditing, ContourStore, contourPainter, JOINT_COLOURS } from "./contours";
import { pickSeries } from "./series";
import { type FormItem, label, missingItems, rowsToValues, type Values, valuesToRows } from "./grid";
import { markMissing, renderGrid } from "./gridView";

export async function readingView(outlet: HTMLElement, params: Params): Promise<() => void> {
  const openedAt = performance.now();
  void ensureCornerstone(); // in parallel with the API calls below
  document.body.classList.add("reading-room");
  const id = params.assignment; // the assignment's opaque key
  const status = h("span", { class: "save-status", role: "status", "aria-live": "polite" }, "");
  const errors = h("div", { class: "errors", "aria-live": "assertive" });
  const viewerBox = h("div", { class: "viewer-box", "data-testid": "viewer" });
  const reformatBox = h("div", { class: "viewer-box reformat-box", hidden: true });
  // Over the images, not in the toolbar: a banner there would wrap the toolbar and resize the images.
  const modeBanner = h("p", { class: "mode-banner", role: "status", hidden: true, "data-testid": "mode" });
  const imageRow = h("div", { class: "image-row" }, viewerBox, reformatBox, modeBanner);
  const panel = h("aside", { class: "grading", "aria-label": "Grading" });
  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "Image tools" });
  const header = h("header", { class: "case-header" });
  const main = h(
    "main",
    { class: "reading", id: "main" },
    header,
    h(
      "div",
      { class: "reading-body" },
      h("section", { class: "images", "aria-label": "Images" }, toolbar, imageRow),
      panel,
    ),
    errors,
  );
  outlet.append(main);

  let assignment: AssignmentDetail;
  let draft;
  try {
    [assignment, draft] = await Promise.all([api.assignment(id), api.draft(id)]);
  } catch (e) {
    main.replaceChildren(message(e instanceof ApiError ? e.detail : String(e), "error"));
    return () => undefined;
  }
  if (assignment.status === "submitted" || assignment.status === "cancelled") {
    main.replaceChildren(
      h(
        "div",
        { class: "page" },
        message(`This case is ${assignment.status}; readings cannot be changed here.`, "error"),
        h("a", { href: `/projects/${assignment.project_id}/worklist` }, "Back to the worklist"),
      ),
    );
    return () => undefined;
  }
  const scheme = assignment.scheme;
  const form = scheme.form;
  // An AI-aided read (the second, paired read of a project that enables it) shows the AI pre-read; the API
  // answers 404 for any other assignment, so an unaided reader never receives it.
  const ai: AiPrediction[] = assignment.aided ? await api.assignmentAi(id).catch(() => []) : [];
  const isCt = scheme.modality === "CT";
  const sequences = Object.keys(
    ((scheme.definition.acquisition as Record<string, unknown> | undefined)?.sequences as object) ?? {},
  );
  const values: Values = rowsToValues(form, draft.values ?? []);
  const contours = new ContourStore();
  contours.load(draft.contours ?? []);
  const joints = [...new Set(form.map((i) => i.joint))];
  const state = { joint: joints[0] ?? "left", editing: false };
  let viewer: Viewer | null = null;
  let closed = false;
  let submitted = false;
  const clock = new ActiveClock(`concord.active.${id}`, storage());
  /** The "N item(s) not graded yet" message of the last submit, kept up to date until none is missing. */
  let missingMsg: HTMLElement | null = null;
  const missingText = (missing: FormItem[]) =>
    `${missing.length} item(s) not graded yet, first: ${label(missing[0].joint)} ${label(missing[0].lesion)} ${label(missing[0].region)}`;

  const saver = new Debounced(async () => {
    status.textContent = "Saving…";
    try {
      await api.draftSave(id, { values: valuesToRows(form, values), contours: contours.rows() });
      status.textContent = `Draft saved ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      status.textContent = "Draft not saved — will retry";
      throw e;
    }
  });
  const changed = () => {
    saver.schedule();
    if (missingMsg?.isConnected) {
      const missing = missingItems(form, values);
      if (missing.length) missingMsg.textContent = missingText(missing);
      else missingMsg.remove();
    }
  };

  // Header
  const submitButton = h(
    "button",
    { class: "primary", type: "button", onclick: () => void submit() },
    "Submit reading",
  );
  header.append(
    h("a", { href: `/projects/${assignment.project_id}/worklist`, class: "back" }, "← Worklist"),
    h("h1", null, `Case ${assignment.case_label}`),
    h("span", { class: "modality" }, `${scheme.name} v${scheme.version}`),
    ...(assignment.aided ? [h("span", { class: "badge aided" }, "AI-aided read")] : []),
    status,
    submitButton,
  );

  // Grading panel
  const grades = (scheme.definition.grades as Record<string, string> | undefined) ?? {};
  const gridView = renderGrid(
    form,
    values,
    changed,
    isCt ? Object.fromEntries(Object.entries(grades).map(([k, v]) => [Number(k), `${k} ${v}`])) : undefined,
  );
  panel.append(h("h2", null, isCt ? "mNY grade per joint" : "Findings"), gridView.root);
  if (assignment.aided) panel.append(aiPanel(ai, form, isCt));
  if (isCt && Object.keys(grades).length) {
    panel.append(
      h("h3", null, "Grade definitions"),
      h(
        "dl",
        { class: "grades" },
        Object.entries(grades).flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
      ),
    );
  }
  panel.append(
    h(
      "details",
      { class: "keys" },
      h("summary", null, "Keyboard"),
      h(
        "ul",
        null,
        h("li", null, "G: go to the first ungraded item"),
        h("li", null, "Tab / Shift+Tab: next / previous item; a digit sets the value and moves on"),
        h("li", null, "↑ / ↓, PageUp / PageDown or the mouse wheel: previous / next slice"),
        h("li", null, "W: next window preset · R: reset zoom/pan"),
        !isCt ? h("li", null, "C: contour mode · J: switch joint · Backspace: remove the last point") : null,
        isCt
          ? h("li", null, "Coronal reformat: a click on either view moves the other one to that point")
          : null,
        h("li", null, "Ctrl+Enter: submit"),
      ),
    ),
  );

  // Images
  const shown = pickSeries(assignment.series, isCt ? [] : sequences);
  const sliceLabel = h("span", { class: "slice", "aria-live": "polite" }, "");
  const presetSelect = h("select", {
    "aria-label": "Window preset",
    onchange: () => viewer?.applyPreset(presetSelect.selectedIndex),
  });
  const contourToggle = h(
    "button",
    { type: "button", "aria-pressed": "false", onclick: () => setEditing(!state.editing) },
    "Contour (C)",
  );
  const jointSelect = h(
    "select",
    { "aria-label": "Contour joint", onchange: () => setJoint(jointSelect.value) },
    joints.map((j) => h("option", { value: j }, `${label(j)} joint`)),
  );
  const contourInfo = h("span", { class: "contour-info" }, "");
  let reformat: Reformat | null = null;
  let loadedSeries: LoadedSeries[] = [];
  /** The last point picked on either CT view (patient mm): the axial slice and the coronal plane pass through it. */
  let linked: Vec3 | null = null;
  const reformatToggle = h(
    "button",
    {
      type: "button",
      "aria-pressed": "false",
      onclick: async () => {
        if (reformat) {
          reformat.destroy();
          reformat = null;
          delete (window as unknown as { __concordReformat?: Reformat }).__concordReformat;
          viewer?.repaint();
          reformatBox.hidden = true;
          imageRow.classList.remove("split");
          reformatToggle.setAttribute("aria-pressed", "false");
          return;
        }
        if (!loadedSeries[0]) return;
        reformatBox.hidden = false;
        imageRow.classList.add("split");
        reformatToggle.setAttribute("aria-pressed", "true");
        try {
          const r = await Reformat.create(reformatBox, loadedSeries[0]);
          if (closed) return r.destroy();
          reformat = r;
          linkReformat(r);
          (window as unknown as { __concordReformat?: Reformat }).__concordReformat = r;
        } catch (e) {
          reformatBox.replaceChildren(
            message(`Reformat failed: ${e instanceof Error ? e.message : String(e)}`, "error"),
          );
        }
      },
    },
    "Coronal reformat",
  );
  toolbar.append(
    ...[
      h(
        "button",
        { type: "button", "aria-label": "Previous slice", onclick: () => void viewer?.step(-1) },
        "▲",
      ),
      sliceLabel,
      h("button", { type: "button", "aria-label": "Next slice", onclick: () => void viewer?.step(1) }, "▼"),
      presetSelect,
      h("button", { type: "button", onclick: () => viewer?.resetView() }, "Reset view"),
      ...(isCt
        ? [reformatToggle]
        : [
            contourToggle,
            jointSelect,
            h("button", { type: "button", onclick: () => clearContour() }, "Clear contour"),
            contourInfo,
          ]),
    ],
  );

  const updateSlice = () => {
    if (!viewer) return;
    sliceLabel.textContent = `Slice ${viewer.slice + 1} / ${viewer.sliceCount}`;
    const n = contours.get(state.joint, viewer.slice).length;
    contourInfo.textContent = `${label(state.joint)}: ${n} point${n === 1 ? "" : "s"} on this slice · ${contours.rows(true).length} contour(s)`;
  };
  const setEditing = (on: boolean) => {
    state.editing = on;
    contourToggle.setAttribute("aria-pressed", String(on));
    contourToggle.classList.toggle("active", on);
    viewerBox.classList.toggle("contour-mode", on);
    modeBanner.hidden = !on;
    modeBanner.textContent = on
      ? `Contour mode: click along the ${label(state.joint).toLowerCase()} joint line to add points · C or Esc to leave`
      : "";
    viewer?.setInteractive(on);
    viewer?.repaint();
  };
  const setJoint = (joint: string) => {
    state.joint = joint;
    jointSelect.value = joint;
    jointSelect.style.borderColor = JOINT_COLOURS[joint] ?? "";
    viewerBox.style.setProperty("--joint-colour", JOINT_COLOURS[joint] ?? "#f5c542");
    if (state.editing) setEditing(true); // the banner names the joint
    viewer?.repaint();
    updateSlice();
  };
  const clearContour = () => {
    if (!viewer) return;
    contours.set(state.joint, viewer.slice, "", []);
    viewer.repaint();
    updateSlice();
    changed();
  };

  let detachEditing: () => void = () => undefined;

  // CT: the axial stack and the coronal reformat follow each other. Each view draws where the other's plane
  // cuts it; a click on one moves the other through the clicked point.
  const referenceLine = (ends: [number, number][], which: string) =>
    s("line", {
      x1: ends[0][0],
      y1: ends[0][1],
      x2: ends[1][0],
      y2: ends[1][1],
      class: "reference",
      "data-ref": which,
    });
  const linkedMark = ([x, y]: [number, number]) => s("circle", { cx: x, cy: y, r: 6, class: "linked-point" });
  const linkReformat = (r: Reformat) => {
    const v = viewer;
    if (!v) return;
    const pane = v.panes[0];
    r.onPick((point) => {
      linked = point;
      void v.setSlice(nearestSlice(pane.series.planes, point)).then(() => r.repaint());
    });
    r.onCamera(() => v.repaint());
    r.addPainter((rf) => {
      const cam = rf.camera();
      const index = pane.viewport.getCurrentImageIdIndex();
      const plane = pane.series.planes[index];
      if (!cam || !plane) return [];
      const cut = planeCut(plane, cam.focalPoint, cam.viewPlaneNormal);
      const out = cut ? [referenceLine([rf.toCanvas(cut[0]), rf.toCanvas(cut[1])], "axial")] : [];
      if (linked && nearestSlice(pane.series.planes, linked) === index)
        out.push(linkedMark(rf.toCanvas(linked)));
      return out;
    });
    v.repaint();
  };

  async function submit(): Promise<void> {
    errors.replaceChildren();
    const missing = missingItems(form, values);
    markMissing(gridView.root, missing);
    if (missing.length) {
      missingMsg = message(missingText(missing), "error");
      errors.append(missingMsg);
      gridView.focusItem(missing[0]);
      return;
    }
    submitButton.disabled = true;
    try {
      await api.submit(id, {
        values: valuesToRows(form, values),
        contours: contours.rows(true),
        duration_s: clock.seconds(),
      });
      closed = true;
      submitted = true;
      saver.discard();
      clock.clear();
      toast(`Reading of case ${assignment.case_label} submitted.`);
      const next = await api.next(assignment.project_id);
      if (next) navigate(`/read/${next.key}`);
      else navigate(`/projects/${assignment.project_id}/worklist?done=1`);
    } catch (e) {
      submitButton.disabled = false;
      if (e instanceof ApiError && e.status === 409)
        errors.append(message("This case was already submitted.", "error"));
      else
        errors.append(
          message(
            e instanceof ApiError ? `${e.detail}${e.field ? ` (${e.field})` : ""}` : String(e),
            "error",
          ),
        );
    }
  }

  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void submit();
      return;
    }
    if (typing(e) || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "g" || e.key === "G") {
      e.preventDefault();
      gridView.focusItem(missingItems(form, values)[0] ?? form[0]);
      return;
    }
    const step = sliceStep(e);
    if (step) e.preventDefault(); // a focused radio or select would change its value
    const v = viewer;
    if (!v) return;
    if (step) {
      void v.step(step);
    } else if (e.key === "w" || e.key === "W") {
      presetSelect.selectedIndex = v.applyPreset(v.presetIndex + 1) ? v.presetIndex : 0;
    } else if (e.key === "r" || e.key === "R") {
      v.resetView();
    } else if (!isCt && (e.key === "c" || e.key === "C")) {
      setEditing(!state.editing);
    } else if (!isCt && e.key === "Escape" && state.editing) {
      setEditing(false);
    } else if (!isCt && (e.key === "j" || e.key === "J")) {
      setJoint(joints[(joints.indexOf(state.joint) + 1) % joints.length]);
    } else if (!isCt && e.key === "Backspace" && state.editing) {
      e.preventDefault();
      const pts = contours.get(state.joint, v.slice).slice(0, -1);
      contours.set(state.joint, v.slice, v.panes[0].series.seriesUid, pts);
      v.repaint();
      updateSlice();
      changed();
    }
  };
  document.addEventListener("keydown", onKey);
  // Closing the tab or reloading: send what is unsaved in a request that outlives the page.
  const onHide = () => {
    if (!submitted) clock.pause();
    if (!saver.pending) return;
    saver.discard();
    void api.draftSave(id, { values: valuesToRows(form, values), contours: contours.rows() }, true);
  };
  window.addEventListener("pagehide", onHide);
  const onInput = () => clock.touch();
  const onVisibility = () => (document.hidden ? clock.pause() : clock.touch());
  const inputs = ["keydown", "pointerdown", "pointermove", "wheel"] as const;
  for (const type of inputs) document.addEventListener(type, onInput, { capture: true, passive: true });
  document.addEventListener("visibilitychange", onVisibility);
  setJoint(state.joint);
  const cleanup = () => {
    closed = true;
    document.removeEventListener("keydown", onKey);
    window.removeEventListener("pagehide", onHide);
    for (const type of inputs) document.removeEventListener(type, onInput, { capture: true });
    document.removeEventListener("visibilitychange", onVisibility);
    if (!submitted) clock.pause(); // off to another page: keep the time for when the case is opened again
    detachEditing();
    if (saver.pending) void saver.flush();
    viewer?.destroy();
    reformat?.destroy();
    delete (window as unknown as { __concordViewer?: Viewer }).__concordViewer;
    delete (window as unknown as { __concordReformat?: Reformat }).__concordReformat;
  };

  const imagesShown = loadingIndicator(viewerBox);
  try {
    console.info(`[concord] case data after ${(performance.now() - openedAt).toFixed(0)} ms`);
    const loaded: LoadedSeries[] = await loadStudySeries(
      assignment.study_uid,
      shown.map((s) => s.series_uid),
    );
    if (closed) return cleanup;
    loadedSeries = loaded;
    console.info(`[concord] series metadata after ${(performance.now() - openedAt).toFixed(0)} ms`);
    viewer = await Viewer.create(viewerBox, loaded, {
      modality: scheme.modality,
      openedAt,
      labels: loaded.map((l) => l.description || l.modality),
    });
    imagesShown();
    if (closed) return cleanup;
    (window as unknown as { __concordViewer?: Viewer }).__concordViewer = viewer;
    viewer.presets.forEach((p) => presetSelect.append(h("option", { value: p.id }, p.label)));
    viewer.onSlice(updateSlice);
    viewer.addPainter(contourPainter(contours, viewer, () => state));
    if (ai.length) {
      const v = viewer;
      const lines = joints.flatMap((j) => aiContours(ai, j));
      v.addPainter((pane, slice) =>
        aiContoursOnSlice(lines, pane.series.planes, slice).map((c) =>
          s("polyline", {
            points: c.points_mm.map((p) => v.toCanvas(pane, p).join(",")).join(" "),
            class: "contour ai",
            "data-ai": c.model,
          }),
        ),
      );
    }
    if (isCt) {
      const v = viewer;
      v.onPick((_pane, point) => {
        if (!reformat?.ready) return;
        linked = point;
        reformat.moveTo(point);
        v.repaint();
      });
      v.onSlice(() => reformat?.repaint());
      v.addPainter((pane, slice) => {
        const cam = reformat?.ready ? reformat.camera() : null;
        const plane = pane.series.planes[slice];
        if (!cam || !plane) return [];
        const cut = planeCut(plane, cam.focalPoint, cam.viewPlaneNormal);
        const out = cut
          ? [referenceLine([v.toCanvas(pane, cut[0]), v.toCanvas(pane, cut[1])], "coronal")]
          : [];
        if (linked && nearestSlice(pane.series.planes, linked) === slice)
          out.push(linkedMark(v.toCanvas(pane, linked)));
        return out;
      });
    }
    detachEditing = attachContourEditing(
      viewer,
      contours,
      () => state,
      () => {
        updateSlice();
        changed();
      },
    );
    updateSlice();
  } catch (e) {
    imagesShown();
    viewerBox.replaceChildren(
      message(`Images could not be loaded: ${e instanceof Error ? e.message : String(e)}`, "error"),
    );
  }
  return cleanup;
}

/** The AI pre-read of an aided read: the model's value (and confidence) per item, CT grades as bars. */
function aiPanel(ai: AiPrediction[], form: FormItem[], isCt: boolean): HTMLElement {
  const box = h("section", { class: "ai-output", "aria-label": "AI pre-read", "data-testid": "ai-output" });
  box.append(h("h2", null, "AI pre-read"));
  if (!ai.length) {
    box.append(h("p", { class: "sub" }, "No promoted model has pre-read this case yet."));
    return box;
  }
  const rows = aiForForm(ai, form);
  box.append(
    h(
      "p",
      { class: "sub" },
      `${ai.map((p) => `${p.kind} v${p.version}`).join(", ")}; AI contours are dashed. Your grades are your own.`,
    ),
  );
  if (isCt)
    for (const r of rows)
      box.append(
        h("p", null, `${label(r.joint)} joint: grade ${r.value.value}`),
        bars(
          r.value.probabilities,
          r.value.probabilities.map((_, g) => `grade ${g}`),
          { title: `AI probability per mNY grade, ${label(r.joint)} joint`, highlight: r.value.value },
        ),
      );
  else if (rows.length)
    box.append(
      h(
        "details",
        { open: true },
        h("summary", null, `AI values (${rows.filter((r) => r.value.value !== 0).length} positive)`),
        h(
          "table",
          { class: "readers" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              ["Joint", "Item", "AI"].map((c) => h("th", { scope: "col" }, c)),
            ),
          ),
          h(
            "tbody",
            null,
            rows.map((r) =>
              h(
                "tr",
                { class: r.value.value ? "ai-positive" : undefined },
                h("td", null, label(r.joint)),
                h("td", null, `${label(r.lesion)} ${r.region === "joint" ? "" : label(r.region)}`.trim()),
                h(
                  "td",
                  null,
                  `${r.value.value} `,
                  h("span", { class: "sub" }, aiConfidenceText(r.value, [0, 1])),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  return box;
}
