// The grading grid as accessible radio groups: Tab between items, digits set the focused item's value
// and move to the next item; unanswered items are marked.
import { h } from "../../ui/dom";
import { isArrow } from "../../viewer/keys";
import { buildGrid, type FormItem, itemKey, label, valueForKey, type Values } from "./grid";

export interface GridView {
  root: HTMLElement;
  focusItem(item: FormItem): void;
  refresh(): void;
}

export function renderGrid(
  form: FormItem[],
  values: Values,
  changed: (item: FormItem) => void,
  valueLabels?: Record<number, string>,
): GridView {
  const grid = buildGrid(form);
  const inputs = new Map<string, HTMLInputElement[]>();
  const cells = new Map<string, HTMLElement>();

  const radios = (item: FormItem, caption: string): HTMLElement => {
    const key = itemKey(item);
    const name = `g-${key}`;
    const list = item.values.map((v) =>
      h("input", {
        type: "radio",
        name,
        value: String(v),
        id: `${name}-${v}`,
        checked: values.get(key) === v,
        "aria-label": `${caption}: ${valueLabels?.[v] ?? v}`,
        onchange: () => {
          values.set(key, v);
          cell.classList.remove("missing");
          changed(item);
        },
        onkeydown: (e: KeyboardEvent) => {
          if (e.ctrlKey || e.metaKey || e.altKey) return;
          // Arrows would move the radio group's checked value: ↑/↓ scroll slices (the page's handler).
          if (isArrow(e.key)) return e.preventDefault();
          const v2 = valueForKey(item, e.key);
          if (v2 === null) return;
          e.preventDefault();
          e.stopPropagation();
          values.set(key, v2);
          for (const input of list) input.checked = Number(input.value) === v2;
          cell.classList.remove("missing");
          changed(item);
          const next = grid.order[grid.order.indexOf(item) + 1];
          if (next) focusItem(next);
        },
      }),
    );
    inputs.set(key, list);
    const cell = h(
      "div",
      { class: "choice", role: "radiogroup", "aria-label": caption, "data-item": key },
      list.map((input, i) =>
        h("label", { for: input.id, class: "opt" }, input, h("span", null, String(item.values[i]))),
      ),
    );
    cells.set(key, cell);
    return cell;
  };

  const focusItem = (item: FormItem) => {
    const list = inputs.get(itemKey(item)) ?? [];
    (list.find((i) => i.checked) ?? list[0])?.focus();
  };

  const root = h(
    "div",
    { class: "grid" },
    grid.sections.map((section) =>
      h(
        "section",
        { class: "joint", "aria-label": `${label(section.joint)} joint` },
        h("h3", null, `${label(section.joint)} joint`),
        section.matrix.length
          ? h(
              "table",
              { class: "matrix" },
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Lesion")),
                  section.regions.map((r) => h("th", { scope: "col" }, label(r))),
                ),
              ),
              h(
                "tbody",
                null,
                section.matrix.map((row) =>
                  h(
                    "tr",
                    null,
                    h("th", { scope: "row" }, label(row.lesion)),
                    row.cells.map((c) =>
                      h(
                        "td",
                        null,
                        c ? radios(c, `${label(section.joint)} ${label(row.lesion)} ${label(c.region)}`) : "",
                      ),
                    ),
                  ),
                ),
              ),
            )
          : null,
        h(
          "div",
          { class: "singles" },
          section.single.map((item) =>
            h(
              "div",
              { class: "single" },
              h("span", { class: "single-label" }, label(item.lesion)),
              radios(item, `${label(section.joint)} ${label(item.lesion)}`),
            ),
          ),
        ),
      ),
    ),
  );

  return {
    root,
    focusItem,
    refresh() {
      for (const item of form) {
        const key = itemKey(item);
        for (const input of inputs.get(key) ?? []) input.checked = values.get(key) === Number(input.value);
        cells.get(key)?.classList.toggle("missing", false);
      }
    },
  };
}

export function markMissing(root: HTMLElement, missing: FormItem[]): void {
  for (const el of root.querySelectorAll(".choice.missing")) el.classList.remove("missing");
  for (const item of missing) root.querySelector(`[data-item="${itemKey(item)}"]`)?.classList.add("missing");
}
