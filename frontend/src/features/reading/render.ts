// The reading view's DOM: the page layout, the header, the grading panel (grid, AI pre-read, grade
// definitions, keyboard help), the image toolbar and what shows the model's state. No event wiring beyond
// the handlers it is given (controller.ts), no state of its own (model.ts).
import type { AiPrediction } from "../../api";
import { bars } from "../../ui/charts";
import { h, message } from "../../ui/dom";
import { aiConfidenceText, aiForForm } from "../shared/ai";
import { JOINT_COLOURS } from "../shared/contours";
import { sliceButtons } from "../shared/imageTools";
import { conditionBadge, label } from "../shared/labels";
import type { FormItem } from "./grid";
import type { ReadingModel } from "./model";

export interface Layout {
  main: HTMLElement;
  header: HTMLElement;
  status: HTMLElement;
  errors: HTMLElement;
  toolbar: HTMLElement;
  imageRow: HTMLElement;
  viewerBox: HTMLElement;
  reformatBox: HTMLElement;
  modeBanner: HTMLElement;
  panel: HTMLElement;
}

export function layout(): Layout {
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
  return { main, header, status, errors, toolbar, imageRow, viewerBox, reformatBox, modeBanner, panel };
}

/** The page instead of the reading view when the assignment can no longer be read. */
export const closedPage = (reason: string, worklistPath: string): HTMLElement =>
  h(
    "div",
    { class: "page" },
    message(reason, "error"),
    h("a", { href: worklistPath }, "Back to the worklist"),
  );

/** The read's condition as a badge ("AI-aided read", "T1 only read"); none for a plain unaided read. */
function conditionBadges(assignment: ReadingModel["assignment"]): HTMLElement[] {
  const text = conditionBadge(assignment);
  if (text === null) return [];
  return [
    h(
      "span",
      { class: `badge condition${assignment.aided ? " aided" : ""}`, "data-condition": assignment.condition },
      text,
    ),
  ];
}

export function fillHeader(ui: Layout, model: ReadingModel, submitButton: HTMLElement): void {
  const { assignment } = model;
  const scheme = assignment.scheme;
  ui.header.append(
    h("a", { href: model.worklistPath, class: "back" }, "← Worklist"),
    h("h1", null, `Case ${assignment.case_label}`),
    h("span", { class: "modality" }, `${scheme.name} v${scheme.version}`),
    ...conditionBadges(assignment),
    ui.status,
    submitButton,
  );
}

/** The grading panel around the grid: the AI pre-read (aided reads), CT grade definitions, keyboard help. */
export function fillPanel(ui: Layout, model: ReadingModel, grid: HTMLElement, ai: AiPrediction[]): void {
  const isCt = model.isCt;
  const grades = model.grades;
  ui.panel.append(h("h2", null, isCt ? "mNY grade per joint" : "Findings"), grid);
  if (model.assignment.aided) ui.panel.append(aiPanel(ai, model.form, isCt));
  if (isCt && Object.keys(grades).length) {
    ui.panel.append(
      h("h3", null, "Grade definitions"),
      h(
        "dl",
        { class: "grades" },
        Object.entries(grades).flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
      ),
    );
  }
  ui.panel.append(
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
}

export interface ToolbarHandlers {
  step: (delta: number) => void;
  preset: (index: number) => void;
  resetView: () => void;
  toggleContour: () => void;
  joint: (joint: string) => void;
  clearContour: () => void;
  toggleReformat: () => void;
}

export interface Toolbar {
  sliceLabel: HTMLElement;
  presetSelect: HTMLSelectElement;
  contourToggle: HTMLButtonElement;
  jointSelect: HTMLSelectElement;
  contourInfo: HTMLElement;
  reformatToggle: HTMLButtonElement;
}

export function fillToolbar(ui: Layout, model: ReadingModel, on: ToolbarHandlers): Toolbar {
  const sliceLabel = h("span", { class: "slice", "aria-live": "polite" }, "");
  const presetSelect = h("select", {
    "aria-label": "Window preset",
    onchange: () => on.preset(presetSelect.selectedIndex),
  });
  const contourToggle = h(
    "button",
    { type: "button", "aria-pressed": "false", onclick: () => on.toggleContour() },
    "Contour (C)",
  );
  const jointSelect = h(
    "select",
    { "aria-label": "Contour joint", onchange: () => on.joint(jointSelect.value) },
    model.joints.map((j) => h("option", { value: j }, `${label(j)} joint`)),
  );
  const contourInfo = h("span", { class: "contour-info" }, "");
  const reformatToggle = h(
    "button",
    { type: "button", "aria-pressed": "false", onclick: () => on.toggleReformat() },
    "Coronal reformat",
  );
  ui.toolbar.append(
    ...[
      ...sliceButtons((delta) => on.step(delta), sliceLabel),
      presetSelect,
      h("button", { type: "button", onclick: () => on.resetView() }, "Reset view"),
      ...(model.isCt
        ? [reformatToggle]
        : [
            contourToggle,
            jointSelect,
            h("button", { type: "button", onclick: () => on.clearContour() }, "Clear contour"),
            contourInfo,
          ]),
    ],
  );
  return { sliceLabel, presetSelect, contourToggle, jointSelect, contourInfo, reformatToggle };
}

/** Show the slice number and the current joint's contour on it. */
export function showSlice(tools: Toolbar, model: ReadingModel, slice: number, sliceCount: number): void {
  tools.sliceLabel.textContent = `Slice ${slice + 1} / ${sliceCount}`;
  tools.contourInfo.textContent = model.contourInfo(slice);
}

/** Show whether contour mode is on (toggle, cursor, banner naming the joint). */
export function showEditing(ui: Layout, tools: Toolbar, model: ReadingModel): void {
  const on = model.editing;
  tools.contourToggle.setAttribute("aria-pressed", String(on));
  tools.contourToggle.classList.toggle("active", on);
  ui.viewerBox.classList.toggle("contour-mode", on);
  ui.modeBanner.hidden = !on;
  ui.modeBanner.textContent = model.modeText();
}

/** Show the joint contours are traced for (its colour on the select and the viewer). */
export function showJoint(ui: Layout, tools: Toolbar, model: ReadingModel): void {
  const joint = model.joint;
  tools.jointSelect.value = joint;
  tools.jointSelect.style.borderColor = JOINT_COLOURS[joint] ?? "";
  ui.viewerBox.style.setProperty("--joint-colour", JOINT_COLOURS[joint] ?? "#f5c542");
}

/** Show the coronal reformat's box (or hide it) beside the axial view. */
export function showReformat(ui: Layout, tools: Toolbar, shown: boolean): void {
  ui.reformatBox.hidden = !shown;
  ui.imageRow.classList.toggle("split", shown);
  tools.reformatToggle.setAttribute("aria-pressed", String(shown));
}

/** The AI pre-read of an aided read: the model's value (and confidence) per item, CT grades as bars. */
export function aiPanel(ai: AiPrediction[], form: FormItem[], isCt: boolean): HTMLElement {
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
