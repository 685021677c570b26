// The image toolbar of every view that shows the viewer: previous and next slice around the slice label,
// then the view's own tools.
import { h } from "../../ui/dom";

/** ▲, the slice label, ▼: the slice stepping buttons, for a toolbar that holds more. */
export function sliceButtons(step: (delta: number) => void, sliceLabel: HTMLElement): HTMLElement[] {
  return [
    h("button", { type: "button", "aria-label": "Previous slice", onclick: () => step(-1) }, "▲"),
    sliceLabel,
    h("button", { type: "button", "aria-label": "Next slice", onclick: () => step(1) }, "▼"),
  ];
}

/** The "Image tools" toolbar: the slice stepping buttons, then ``tools``. */
export function imageToolbar(
  step: (delta: number) => void,
  sliceLabel: HTMLElement,
  ...tools: HTMLElement[]
): HTMLDivElement {
  return h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Image tools" },
    ...sliceButtons(step, sliceLabel),
    ...tools,
  );
}
