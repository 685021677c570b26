// The reading view: images (MRI: T1 + STIR side by side; CT: one viewport), the grading grid, open
// contours per joint and slice (MRI), drafts saved as the reader works, submit → next case.
// This file wires events: state and logic live in model.ts, the DOM in render.ts, the CT views' link in
// linkedViews.ts.
import { api } from "../../api";
import { ApiError } from "../../api/client";
import type { AiPrediction } from "../../api";
import {
  imagesFailedText,
  loadStudySeries,
  type LoadedSeries,
  prefetchOpeningFrames,
  prefetchStudy,
} from "../../dicomweb";
import { assignmentKey, draftKey, offerOpenedCase } from "../../early";
import { navigate } from "../../nav";
import { take } from "../../prefetch";
import type { Params } from "../../router";
import { Debounced } from "../../ui/debounce";
import { h, loadingIndicator, message, s, toast, typing } from "../../ui/dom";
import { sliceStep } from "../../viewer/keys";
import { viewerReady } from "../../viewer/load";
import type { Reformat } from "../../viewer/reformat";
import type { Viewer } from "../../viewer/viewer";
import { aiContours, aiContoursOnSlice } from "../shared/ai";
import { attachContourEditing, contourPainter } from "../shared/contours";
import { ActiveClock, storage } from "./activeTime";
import { markMissing, renderGrid } from "./gridView";
import { LinkedViews } from "./linkedViews";
import { closedReason, missingText, pathAfterSubmit, ReadingModel } from "./model";
import * as render from "./render";
import { pickSeries } from "./series";

type Debug = { __concordViewer?: Viewer; __concordReformat?: Reformat };
const debug = window as unknown as Debug;

export async function readingView(outlet: HTMLElement, params: Params): Promise<() => void> {
  const openedAt = performance.now();
  // The viewer's chunk and Cornerstone, in parallel with the API calls below (main.ts started them already
  // when the page was opened on this view).
  const viewerModule = viewerReady();
  viewerModule.catch(() => undefined); // reported where the images go
  document.body.classList.add("reading-room");
  const id = params.assignment; // the assignment's opaque key
  const ui = render.layout();
  outlet.append(ui.main);

  // What this tab had not saved when the page went (a reload): newer than the server's draft, which the
  // last page's keepalive save may not have reached yet when this page asks for it.
  const unsavedKey = `concord.unsaved.${id}`;
  const unsaved = readUnsaved(unsavedKey);
  let model: ReadingModel;
  try {
    const [assignment, draft] = await Promise.all([
      take(assignmentKey(id), () => api.assignment(id)),
      take(draftKey(id), () => api.draft(id)),
    ]);
    model = new ReadingModel(assignment, unsaved ?? draft);
  } catch (e) {
    ui.main.replaceChildren(message(e instanceof ApiError ? e.detail : String(e), "error"));
    return () => undefined;
  }
  const { assignment, form, contours } = model;
  const closedBecause = closedReason(assignment);
  if (closedBecause) {
    writeUnsaved(unsavedKey, null);
    ui.main.replaceChildren(render.closedPage(closedBecause, model.worklistPath));
    return () => undefined;
  }
  prefetchStudy(assignment.study_uid); // the study's metadata, while the page is set up
  // An AI-aided read (the second, paired read of a project that enables it) shows the AI pre-read; the API
  // answers 404 for any other assignment, so an unaided reader never receives it.
  const ai: AiPrediction[] = assignment.aided ? await api.assignmentAi(id).catch(() => []) : [];
  const isCt = model.isCt;
  let viewer: Viewer | null = null;
  let reformat: Reformat | null = null;
  let link: LinkedViews | null = null;
  let loadedSeries: LoadedSeries[] = [];
  let closed = false;
  let submitted = false;
  const clock = new ActiveClock(`concord.active.${id}`, storage());
  /** The "N item(s) not graded yet" message of the last submit, kept up to date until none is missing. */
  let missingMsg: HTMLElement | null = null;

  const saver = new Debounced(async () => {
    ui.status.textContent = "Saving…";
    try {
      await api.draftSave(id, model.draftBody());
      writeUnsaved(unsavedKey, null);
      ui.status.textContent = `Draft saved ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      ui.status.textContent = "Draft not saved — will retry";
      throw e;
    }
  });
  if (unsaved) saver.schedule(); // the server's draft is older: bring it up to date
  const changed = () => {
    saver.schedule();
    if (missingMsg?.isConnected) {
      const missing = model.missing();
      if (missing.length) missingMsg.textContent = missingText(missing);
      else missingMsg.remove();
    }
  };

  const submitButton = h(
    "button",
    { class: "primary", type: "button", onclick: () => void submit() },
    "Submit reading",
  );
  render.fillHeader(ui, model, submitButton);
  const gridView = renderGrid(form, model.values, changed, model.valueLabels);
  render.fillPanel(ui, model, gridView.root, ai);

  const updateSlice = () => {
    if (viewer) render.showSlice(tools, model, viewer.slice, viewer.sliceCount);
  };
  const setEditing = (on: boolean) => {
    model.editing = on;
    render.showEditing(ui, tools, model);
    viewer?.setInteractive(on);
    viewer?.repaint();
  };
  const setJoint = (joint: string) => {
    model.joint = joint;
    render.showJoint(ui, tools, model);
    if (model.editing) setEditing(true); // the banner names the joint
    viewer?.repaint();
    updateSlice();
  };
  const toggleReformat = async () => {
    if (reformat) {
      reformat.destroy();
      reformat = null;
      link?.detach();
      delete debug.__concordReformat;
      viewer?.repaint();
      render.showReformat(ui, tools, false);
      return;
    }
    if (!loadedSeries[0]) return;
    render.showReformat(ui, tools, true);
    try {
      const { Reformat } = await viewerModule;
      const r = await Reformat.create(ui.reformatBox, loadedSeries[0]);
      if (closed) return r.destroy();
      reformat = r;
      link?.attach(r);
      debug.__concordReformat = r;
    } catch (e) {
      ui.reformatBox.replaceChildren(
        message(`Reformat failed: ${e instanceof Error ? e.message : String(e)}`, "error"),
      );
    }
  };
  const tools = render.fillToolbar(ui, model, {
    step: (delta) => void viewer?.step(delta),
    preset: (index) => viewer?.applyPreset(index),
    resetView: () => viewer?.resetView(),
    toggleContour: () => setEditing(!model.editing),
    joint: setJoint,
    clearContour: () => {
      if (!viewer) return;
      model.clearContour(viewer.slice);
      viewer.repaint();
      updateSlice();
      changed();
    },
    toggleReformat: () => void toggleReformat(),
  });

  let detachEditing: () => void = () => undefined;

  async function submit(): Promise<void> {
    ui.errors.replaceChildren();
    const missing = model.missing();
    markMissing(gridView.root, missing);
    if (missing.length) {
      missingMsg = message(missingText(missing), "error");
      ui.errors.append(missingMsg);
      gridView.focusItem(missing[0]);
      return;
    }
    submitButton.disabled = true;
    try {
      await api.submit(id, model.submitBody(clock.seconds()));
      closed = true;
      submitted = true;
      saver.discard();
      writeUnsaved(unsavedKey, null);
      clock.clear();
      toast(`Reading of case ${assignment.case_label} submitted.`);
      const next = await api.next(assignment.project_id);
      if (next) offerOpenedCase(next);
      navigate(pathAfterSubmit(assignment.project_id, next?.key ?? null));
    } catch (e) {
      submitButton.disabled = false;
      if (e instanceof ApiError && e.status === 409)
        ui.errors.append(message("This case was already submitted.", "error"));
      else
        ui.errors.append(
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
      gridView.focusItem(model.firstToGrade());
      return;
    }
    const step = sliceStep(e);
    if (step) e.preventDefault(); // a focused radio or select would change its value
    const v = viewer;
    if (!v) return;
    if (step) {
      void v.step(step);
    } else if (e.key === "w" || e.key === "W") {
      tools.presetSelect.selectedIndex = v.applyPreset(v.presetIndex + 1) ? v.presetIndex : 0;
    } else if (e.key === "r" || e.key === "R") {
      v.resetView();
    } else if (!isCt && (e.key === "c" || e.key === "C")) {
      setEditing(!model.editing);
    } else if (!isCt && e.key === "Escape" && model.editing) {
      setEditing(false);
    } else if (!isCt && (e.key === "j" || e.key === "J")) {
      setJoint(model.nextJoint());
    } else if (!isCt && e.key === "Backspace" && model.editing) {
      e.preventDefault();
      model.removeLastPoint(v.slice, v.panes[0].series.seriesUid);
      v.repaint();
      updateSlice();
      changed();
    }
  };
  document.addEventListener("keydown", onKey);
  // Closing the tab or reloading: send what is unsaved in a request that outlives the page.
  const onHide = () => {
    if (!submitted) clock.pause();
    // A save on its way counts too: a reload cuts its request off. The body is also kept in this tab, for
    // the reloaded page, which may ask for the draft before the keepalive save has reached the server.
    if (!saver.pending && !saver.busy) return;
    const body = model.draftBody();
    writeUnsaved(unsavedKey, body);
    saver.discard();
    void api.draftSave(id, body, true);
  };
  window.addEventListener("pagehide", onHide);
  const onInput = () => clock.touch();
  const onVisibility = () => (document.hidden ? clock.pause() : clock.touch());
  const inputs = ["keydown", "pointerdown", "pointermove", "wheel"] as const;
  for (const type of inputs) document.addEventListener(type, onInput, { capture: true, passive: true });
  document.addEventListener("visibilitychange", onVisibility);
  setJoint(model.joint);
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
    delete debug.__concordViewer;
    delete debug.__concordReformat;
  };

  const imagesShown = loadingIndicator(ui.viewerBox);
  try {
    console.info(`[concord] case data after ${(performance.now() - openedAt).toFixed(0)} ms`);
    const loaded: LoadedSeries[] = await loadStudySeries(
      assignment.study_uid,
      model.seriesUids((sequences) => pickSeries(assignment.series, sequences)),
    );
    if (closed) return cleanup;
    loadedSeries = loaded;
    prefetchOpeningFrames(loaded);
    console.info(`[concord] series metadata after ${(performance.now() - openedAt).toFixed(0)} ms`);
    const { Viewer } = await viewerModule;
    if (closed) return cleanup;
    viewer = await Viewer.create(ui.viewerBox, loaded, {
      modality: assignment.scheme.modality,
      openedAt,
      labels: loaded.map((l) => l.description || l.modality),
    });
    imagesShown();
    if (closed) return cleanup;
    debug.__concordViewer = viewer;
    viewer.presets.forEach((p) => tools.presetSelect.append(h("option", { value: p.id }, p.label)));
    viewer.onSlice(updateSlice);
    viewer.addPainter(contourPainter(contours, viewer, () => model));
    if (ai.length) {
      const v = viewer;
      const lines = model.joints.flatMap((j) => aiContours(ai, j));
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
      link = new LinkedViews(viewer);
      if (reformat) link.attach(reformat);
    }
    detachEditing = attachContourEditing(
      viewer,
      contours,
      () => model,
      () => {
        updateSlice();
        changed();
      },
    );
    updateSlice();
  } catch (e) {
    imagesShown();
    ui.viewerBox.replaceChildren(message(imagesFailedText(e), "error"));
  }
  return cleanup;
}

type DraftBody = ReturnType<ReadingModel["draftBody"]>;

/** The draft body this tab kept at its last page hide, if any (sessionStorage: this tab only). */
function readUnsaved(key: string): DraftBody | null {
  try {
    const raw = globalThis.sessionStorage?.getItem(key);
    return raw ? (JSON.parse(raw) as DraftBody) : null;
  } catch {
    return null;
  }
}

function writeUnsaved(key: string, body: DraftBody | null): void {
  try {
    if (body) globalThis.sessionStorage?.setItem(key, JSON.stringify(body));
    else globalThis.sessionStorage?.removeItem(key);
  } catch {
    // storage full or disabled: the keepalive save still goes
  }
}
