// The grading grid as accessible radio groups: Tab between items, digits set the focused item's value
// and move to the next item; unanswered items are marked. Where the scheme asks for a confidence (issue 14)
// the radios are the ratings 1–5 and the digit is the rating (the value follows: 1–3 absent, 4–5 present),
// so a rated MRI case takes as many keys as an unrated one; a probability is typed (0–100, Enter = next).
import { h } from "../../ui/dom";
import { isArrow } from "../../viewer/keys";
import {
  buildGrid,
  choiceLabel,
  choicesOf,
  type FormItem,
  itemKey,
  label,
  setRating,
  validRating,
  valueForKey,
  valueOfRating,
  type Values,
} from "./grid";

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

  const chosen = (item: FormItem): number | undefined =>
    item.rating ? values.ratings.get(itemKey(item)) : values.get(itemKey(item));
  const choose = (item: FormItem, choice: number) => {
    if (item.rating) setRating(values, item, choice);
    else values.set(itemKey(item), choice);
    cells.get(itemKey(item))?.classList.remove("missing");
    changed(item);
  };
  const next = (item: FormItem) => {
    const following = grid.order[grid.order.indexOf(item) + 1];
    if (following) focusItem(following);
  };

  const probability = (item: FormItem, caption: string): HTMLElement => {
    const key = itemKey(item);
    const scale = item.rating!;
    const output = h("span", { class: "called" }, "");
    const show = () => {
      const r = values.ratings.get(key);
      output.textContent = r === undefined ? "" : valueOfRating(scale, r) ? "present" : "absent";
    };
    const input = h("input", {
      type: "number",
      min: String(scale.min),
      max: String(scale.max),
      step: "1",
      inputmode: "numeric",
      class: "probability",
      value: values.ratings.has(key) ? String(values.ratings.get(key)) : "",
      "aria-label": `${caption}: probability ${scale.min}–${scale.max} %`,
      oninput: () => {
        const r = input.value === "" ? NaN : Number(input.value);
        if (validRating(scale, r)) {
          choose(item, r);
          input.setCustomValidity("");
        } else {
          values.ratings.delete(key);
          values.delete(key);
          input.setCustomValidity(`a whole number ${scale.min}–${scale.max}`);
          changed(item);
        }
        show();
      },
      onkeydown: (e: KeyboardEvent) => {
        if (e.key !== "Enter" || e.ctrlKey || e.metaKey || e.altKey) return;
        e.preventDefault();
        e.stopPropagation();
        if (values.ratings.has(key)) next(item);
      },
    }) as HTMLInputElement;
    inputs.set(key, [input]);
    show();
    const cell = h(
      "div",
      { class: "choice probability-cell", role: "group", "aria-label": caption, "data-item": key },
      input,
      h("span", { "aria-hidden": "true" }, "%"),
      output,
    );
    cells.set(key, cell);
    return cell;
  };

  const radios = (item: FormItem, caption: string): HTMLElement => {
    if (item.rating?.kind === "probability") return probability(item, caption);
    const key = itemKey(item);
    const name = `g-${key}`;
    const choices = choicesOf(item);
    const list = choices.map((v) =>
      h("input", {
        type: "radio",
        name,
        value: String(v),
        id: `${name}-${v}`,
        checked: chosen(item) === v,
        "aria-label": `${caption}: ${choiceLabel(item, v, valueLabels)}`,
        onchange: () => choose(item, v),
        onkeydown: (e: KeyboardEvent) => {
          if (e.ctrlKey || e.metaKey || e.altKey) return;
          // Arrows would move the radio group's checked value: ↑/↓ scroll slices (the page's handler).
          if (isArrow(e.key)) return e.preventDefault();
          const v2 = valueForKey(item, e.key);
          if (v2 === null) return;
          e.preventDefault();
          e.stopPropagation();
          for (const input of list) input.checked = Number(input.value) === v2;
          choose(item, v2);
          next(item);
        },
      }),
    );
    inputs.set(key, list);
    const scale = item.rating;
    const cell = h(
      "div",
      {
        class: scale ? "choice rated" : "choice",
        role: "radiogroup",
        "aria-label": scale ? `${caption} (confidence)` : caption,
        "data-item": key,
      },
      list.map((input, i) =>
        h(
          "label",
          {
            for: input.id,
            class: scale && valueOfRating(scale, choices[i]) ? "opt present" : "opt",
            title: choiceLabel(item, choices[i], valueLabels),
          },
          input,
          h("span", null, String(choices[i])),
        ),
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
        for (const input of inputs.get(key) ?? []) {
          if (input.type === "radio") input.checked = chosen(item) === Number(input.value);
          else input.value = values.ratings.has(key) ? String(values.ratings.get(key)) : "";
        }
        cells.get(key)?.classList.toggle("missing", false);
      }
    },
  };
}

export function markMissing(root: HTMLElement, missing: FormItem[]): void {
  for (const el of root.querySelectorAll(".choice.missing")) el.classList.remove("missing");
  for (const item of missing) root.querySelector(`[data-item="${itemKey(item)}"]`)?.classList.add("missing");
}
