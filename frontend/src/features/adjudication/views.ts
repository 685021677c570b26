// Adjudication: the queue ranked by uncertainty, and one item with every reader's value and contour,
// the posterior, and the decision.
import { api } from "../../api";
import { ApiError } from "../../api/client";
import type { AdjudicationItem } from "../../api";
import {
  imagesFailedText,
  loadStudySeries,
  prefetchOpeningFrames,
  prefetchStudy,
  studySeries,
} from "../../dicomweb";
import { itemKey } from "../../early";
import { take } from "../../prefetch";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { bars, READER_COLOURS } from "../../ui/charts";
import { fmt, h, loadingIndicator, message, s } from "../../ui/dom";
import type { Vec3 } from "../../viewer/geometry";
import { isArrow, sliceStep } from "../../viewer/keys";
import { viewerReady } from "../../viewer/load";
import type { Viewer } from "../../viewer/viewer";
import { imageToolbar } from "../shared/imageTools";
import { label } from "../shared/labels";
import { aiConfidenceText, aiContours, aiContoursOnSlice, aiValues } from "../shared/ai";
import {
  type CaseInQueue,
  caseSummary,
  entryHref,
  filtersFrom,
  newestOnly,
  nextEntryHref,
  type QueueEntry,
  type QueueFilters,
  queueQuery,
  REASON_LABELS,
  STALE,
  type CaseQueuePage,
} from "./queue";

export async function adjudicationQueueView(outlet: HTMLElement, params: Params): Promise<void> {
  const projectId = Number(params.id);
  const main = h("main", { class: "page", id: "main" });
  outlet.append(main);
  const filters = filtersFrom(location.search);
  const [project, runs] = await Promise.all([
    api.project(projectId),
    api.consensus(projectId).catch(() => []),
  ]);
  const intro = h("p", { class: "sub", "data-testid": "queue-thresholds" });
  const list = h("div", { "aria-live": "polite" });
  const select = (labelText: string, name: keyof QueueFilters, options: [string, string][]) => {
    const el = h(
      "select",
      { id: `filter-${name}`, name },
      options.map(([value, text]) => h("option", { value }, text)),
    );
    el.value = String(filters[name] ?? "");
    el.addEventListener("change", () => {
      (filters as Record<string, unknown>)[name] = el.value;
      void refresh();
    });
    return h("label", { class: "filter" }, `${labelText} `, el);
  };
  const single = h("input", { type: "checkbox", id: "filter-single" });
  single.checked = !!filters.excludeSingle;
  single.addEventListener("change", () => {
    filters.excludeSingle = single.checked;
    void refresh();
  });
  const lesions = [...new Set(runs.map((r) => r.lesion))].sort();
  main.append(
    h("h1", null, `${project.name} — adjudication`),
    intro,
    h(
      "form",
      {
        class: "filters",
        role: "search",
        "aria-label": "Filter the queue",
        onsubmit: (e: Event) => e.preventDefault(),
      },
      select("Lesion", "lesion", [
        ["", "All lesions"],
        ...lesions.map((l): [string, string] => [l, label(l)]),
      ]),
      select("Joint", "joint", [
        ["", "Both joints"],
        ["left", "Left"],
        ["right", "Right"],
      ]),
      select("Reason", "reason", [
        ["", "Any reason"],
        ...Object.entries(REASON_LABELS).map(([code, text]): [string, string] => [code, text]),
      ]),
      h("label", { class: "filter" }, single, " Leave out items read once"),
    ),
    list,
  );

  // Filters changed quickly: only the newest filter's answer is shown, however the answers arrive.
  const newest = newestOnly<CaseQueuePage>();
  async function refresh(): Promise<void> {
    const query = queueQuery(filters);
    const shown = new URLSearchParams(query);
    shown.delete("limit");
    shown.delete("offset");
    history.replaceState(history.state, "", `${location.pathname}${shown.size ? `?${shown}` : ""}`);
    list.setAttribute("aria-busy", "true");
    let page: CaseQueuePage | typeof STALE;
    try {
      page = await newest(api.caseQueue(projectId, query));
    } catch (e) {
      list.removeAttribute("aria-busy");
      list.replaceChildren(message(e instanceof ApiError ? e.detail : String(e), "error"));
      return;
    }
    if (page === STALE) return;
    list.removeAttribute("aria-busy");
    intro.textContent =
      `An item is in dispute when its consensus is below ${fmt(page.threshold)} certainty (low posterior), ` +
      `when its readers gave different values (reader disagreement), or when their joint lines lie more than ` +
      `${fmt(page.contour_threshold_mm, 1)} mm apart (contour). ${page.count} case(s), least certain first; ` +
      `items only one reader read are marked and come last.`;
    list.replaceChildren(
      ...(page.results.length
        ? page.results.map((c) => caseSection(projectId, c))
        : [message("Nothing to adjudicate with these filters.")]),
    );
  }
  await refresh();
}

function caseSection(projectId: number, c: CaseInQueue): HTMLElement {
  const itemName = (e: QueueEntry) =>
    e.kind === "contour"
      ? `${label(e.joint)} joint line, slice ${(e.slice_index ?? 0) + 1}`
      : `${label(e.joint)} ${label(e.region ?? "")} ${label(e.lesion ?? "")}`;
  return h(
    "section",
    { class: "queue-case", "data-case": c.case_label, "aria-label": `Case ${c.case_label}` },
    h("h2", null, `Case ${c.case_label}`),
    h(
      "p",
      { class: "sub" },
      `${caseSummary(c)} · `,
      c.reasons.map((r) => h("span", { class: `badge reason-${r}` }, REASON_LABELS[r])),
    ),
    h(
      "table",
      { class: "table" },
      h("caption", { class: "sr-only" }, `Items in dispute in case ${c.case_label}`),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Item", "Why", "Consensus", "Readers' values", ""].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        null,
        c.items.map((e) =>
          h(
            "tr",
            { class: e.single_read ? "single-read" : "", "data-kind": e.kind },
            h(
              "td",
              null,
              itemName(e),
              e.single_read ? h("span", { class: "badge single" }, " read once") : null,
            ),
            h(
              "td",
              null,
              h(
                "ul",
                { class: "reasons" },
                e.reasons.map((r) =>
                  h("li", { "data-reason": r.code }, `${REASON_LABELS[r.code]}: ${r.text}`),
                ),
              ),
            ),
            h(
              "td",
              null,
              e.kind === "contour"
                ? `${fmt(e.disagreement_mm, 1)} mm`
                : `${e.consensus} (${fmt(e.max_posterior)})`,
            ),
            h("td", null, e.kind === "contour" ? `${e.n_readers} lines` : e.values_read.join(", ")),
            h(
              "td",
              null,
              h(
                "a",
                {
                  href: entryHref(projectId, c.case_id, e),
                  "aria-label": `${e.kind === "contour" ? "View contours" : "Decide"}: case ${c.case_label}, ${itemName(e)}`,
                },
                e.kind === "contour" ? "View contours" : "Decide",
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

export async function adjudicationItemView(outlet: HTMLElement, params: Params): Promise<() => void> {
  const openedAt = performance.now();
  const viewerModule = viewerReady(); // in parallel with the API calls below
  viewerModule.catch(() => undefined); // reported where the images go
  document.body.classList.add("reading-room");
  const projectId = Number(params.id);
  const main = h("main", { class: "reading", id: "main" });
  outlet.append(main);
  let item: AdjudicationItem;
  try {
    const caseId = Number(params.case);
    item = await take(itemKey(projectId, caseId, params.joint, params.region, params.lesion), () =>
      api.item(projectId, caseId, params.joint, params.region, params.lesion),
    );
    prefetchStudy(item.study_uid, true); // its series and metadata at once, while the page is set up
  } catch (e) {
    main.append(message(e instanceof ApiError ? e.detail : String(e), "error"));
    return () => undefined;
  }
  const readers = [
    ...new Set([...item.readings.map((r) => r.reader), ...item.contours.map((c) => c.reader)]),
  ];
  const colour = (reader: string) => READER_COLOURS[readers.indexOf(reader) % READER_COLOURS.length];
  const ai = aiValues(item.ai, item);
  const aiLines = aiContours(item.ai, item.joint);
  const viewerBox = h("div", { class: "viewer-box", "data-testid": "viewer" });
  const sliceLabel = h("span", { class: "slice" });
  const presetSelect = h("select", {
    "aria-label": "Window preset",
    onchange: () => viewer?.applyPreset(presetSelect.selectedIndex),
  });
  const panel = h("aside", { class: "grading", "aria-label": "Decision" });
  const errors = h("div", { class: "errors", "aria-live": "assertive" });
  let viewer: Viewer | null = null;
  main.append(
    h(
      "header",
      { class: "case-header" },
      h("a", { href: `/projects/${projectId}/adjudication`, class: "back" }, "← Queue"),
      h(
        "h1",
        null,
        `Case ${item.case_label}: ${label(item.joint)} ${label(item.region)} ${label(item.lesion)}`,
      ),
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

  // Readers and their values
  panel.append(
    h("h2", null, "Readings"),
    h(
      "table",
      { class: "readers" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col" }, "Reader"),
          h("th", { scope: "col" }, "Session"),
          h("th", { scope: "col" }, "Value"),
          h("th", { scope: "col" }, "What the consensus makes of it"),
        ),
      ),
      h(
        "tbody",
        null,
        item.readings.map((r) =>
          h(
            "tr",
            null,
            h("td", null, h("span", { class: "swatch", style: { background: colour(r.reader) } }), r.reader),
            h("td", null, String(r.session)),
            h("td", null, String(r.value)),
            h(
              "td",
              { class: "explain", "data-testid": "explanation" },
              r.explanation
                ? [
                    r.explanation.sentence,
                    r.explanation.row ? h("span", { class: "sub" }, ` (${r.explanation.row})`) : null,
                  ]
                : h("span", { class: "sub" }, "No model of this reader yet (not in the last consensus fit)."),
            ),
          ),
        ),
        ai.map((v) =>
          h(
            "tr",
            { class: "ai-row", "data-ai": v.model },
            h("td", null, h("span", { class: "swatch ai", "aria-hidden": "true" }), `AI (${v.model})`),
            h("td", null, "–"),
            h("td", null, `${v.value} `, h("span", { class: "sub" }, aiConfidenceText(v, item.values))),
            h("td", null, "–"),
          ),
        ),
      ),
    ),
  );
  if (item.posterior) {
    panel.append(
      h("h2", null, "Consensus posterior"),
      bars(
        item.posterior,
        item.values.map((v) => `value ${v}`),
        { title: "Posterior probability per value", highlight: item.consensus_label },
      ),
    );
  }
  const aiBox = h("section", { class: "ai-output", "aria-label": "AI output", "data-testid": "ai-output" });
  panel.append(aiBox);
  if (!item.ai?.length)
    aiBox.append(h("p", { class: "sub" }, "AI: no promoted model has pre-read this case."));
  else {
    aiBox.append(
      h("h2", null, "AI output"),
      h(
        "p",
        { class: "sub" },
        `Pre-read by ${item.ai.map((p) => `${p.kind} v${p.version}`).join(", ")}` +
          (ai.length || aiLines.length ? "." : "; no output for this item."),
      ),
    );
    for (const v of ai)
      aiBox.append(
        h("p", { class: "sub" }, `${v.model}: value ${v.value}, ${aiConfidenceText(v, item.values)}`),
        bars(
          v.probabilities,
          item.values.map((x) => `value ${x}`),
          { title: `AI (${v.model}) probability per value`, highlight: item.values.indexOf(v.value) },
        ),
      );
  }
  if (item.adjudications.length)
    panel.append(h("p", { class: "sub" }, `Earlier decision: ${item.adjudications[0].value}`));

  // Decision
  const name = "decision";
  const choices = item.values.map((v) =>
    h(
      "label",
      { class: "opt" },
      // Nothing pre-set: Ctrl+Enter must not rubber-stamp the consensus.
      h("input", { type: "radio", name, value: String(v) }),
      ` ${v}`,
    ),
  );
  const reason = h("textarea", { id: "reason", required: true });
  panel.append(
    h(
      "form",
      {
        class: "decision",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          errors.replaceChildren();
          const chosen = panel.querySelector<HTMLInputElement>(`input[name=${name}]:checked`);
          if (!chosen) return errors.append(message("Choose a value.", "error"));
          if (!reason.value.trim()) return errors.append(message("Give a reason.", "error"));
          try {
            await api.adjudicate(projectId, {
              case_id: item.case_id,
              joint: item.joint,
              region: item.region,
              lesion: item.lesion,
              value: Number(chosen.value),
              reason: reason.value.trim(),
            });
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
      h("fieldset", { class: "choice" }, h("legend", null, "Final value"), choices),
      item.consensus_label !== null && item.consensus_label !== undefined
        ? h(
            "p",
            { class: "sub" },
            `Consensus: ${item.consensus_label}` +
              (item.posterior
                ? ` (posterior ${fmt(item.posterior[item.values.indexOf(item.consensus_label)])})`
                : "") +
              ". Choose the final value yourself.",
          )
        : null,
      h("label", { for: "reason" }, "Reason"),
      reason,
      h("p", null, h("button", { type: "submit", class: "primary" }, "Record decision and go to next")),
      h(
        "p",
        { class: "sub" },
        "Keys: a digit picks the value, Ctrl+Enter records, ↑/↓ or PageUp/PageDown change slice, W next window preset, R reset.",
      ),
    ),
  );

  const resetView = () => {
    if (!viewer) return;
    viewer.resetView();
    viewer.applyPreset(0);
    presetSelect.selectedIndex = 0;
  };

  // Keys work from the start: a fast adjudicator can decide while the images are still loading.
  const onKey = (e: KeyboardEvent) => {
    if (!main.isConnected) return; // left while loading: the cleanup comes once the viewer is made
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      panel.querySelector<HTMLFormElement>("form.decision")?.requestSubmit();
      return;
    }
    const step = sliceStep(e);
    if (step) {
      e.preventDefault(); // the decision's radio buttons would change value
      void viewer?.step(step);
      return;
    }
    if ((e.target as HTMLElement).tagName === "TEXTAREA" || e.altKey || e.ctrlKey || e.metaKey) return;
    if (isArrow(e.key) && (e.target as HTMLInputElement).type === "radio") e.preventDefault();
    else if (e.key === "w" || e.key === "W") {
      if (viewer)
        presetSelect.selectedIndex = viewer.presets.indexOf(viewer.applyPreset(viewer.presetIndex + 1));
    } else if (e.key === "r" || e.key === "R") resetView();
    else if (/^[0-9]$/.test(e.key)) {
      // A digit picks that value and moves on to the reason.
      const input = panel.querySelector<HTMLInputElement>(`input[name=${name}][value="${e.key}"]`);
      if (input) {
        e.preventDefault();
        input.checked = true;
        reason.focus();
      }
    }
  };
  document.addEventListener("keydown", onKey);

  // Images with every reader's contour
  const imagesShown = loadingIndicator(viewerBox);
  try {
    const all = await studySeries(item.study_uid);
    const images = all.filter((x) => x.modality !== "SEG" && x.modality !== "SR");
    const mri = images.filter((x) => x.description === "T1" || x.description === "STIR");
    const order = ["T1", "STIR"];
    const chosen = mri.length
      ? mri.sort((a, b) => order.indexOf(a.description) - order.indexOf(b.description))
      : images.slice(0, 1);
    const loaded = await loadStudySeries(
      item.study_uid,
      chosen.map((x) => x.seriesUid),
    );
    const modality = loaded[0]?.modality || "MR";
    const firstContour = item.contours[0] ?? aiLines[0];
    const askedSlice = new URLSearchParams(location.search).get("slice");
    // the slice of the disputed finding: asked for by the queue, else where the readers traced this joint
    const initialSlice =
      askedSlice !== null ? Number(askedSlice) : (item.focus_slice ?? firstContour?.slice_index);
    prefetchOpeningFrames(loaded, initialSlice);
    const { Viewer } = await viewerModule;
    viewer = await Viewer.create(viewerBox, loaded, { modality, openedAt, initialSlice });
    const v = viewer;
    imagesShown();
    v.presets.forEach((p) => presetSelect.append(h("option", { value: p.id }, p.label)));
    (window as unknown as { __concordViewer?: Viewer }).__concordViewer = v;
    const update = () => (sliceLabel.textContent = `Slice ${v.slice + 1} / ${v.sliceCount}`);
    v.onSlice(update);
    update();
    v.addPainter((pane, slice) =>
      item.contours
        .filter((c) => c.slice_index === slice)
        .map((c) => {
          const pts = (c.points_mm as Vec3[]).map((p) => v.toCanvas(pane, p));
          return s("polyline", {
            points: pts.map(([x, y]) => `${x},${y}`).join(" "),
            class: "contour",
            stroke: colour(c.reader),
            "data-reader": c.reader,
          });
        }),
    );
    // The AI's joint line: dashed, in its own colour, labelled "AI" at its start.
    v.addPainter((pane, slice) =>
      aiContoursOnSlice(aiLines, pane.series.planes, slice).flatMap((c) => {
        const pts = c.points_mm.map((p) => v.toCanvas(pane, p));
        return [
          s("polyline", {
            points: pts.map(([x, y]) => `${x},${y}`).join(" "),
            class: "contour ai",
            "data-ai": c.model,
          }),
          s("text", { x: pts[0][0] + 6, y: pts[0][1] - 6, class: "ai-label" }, "AI"),
        ];
      }),
    );
    panel.append(
      h("h2", null, "Contours"),
      h(
        "ul",
        null,
        readers.map((r) =>
          h(
            "li",
            null,
            h("span", { class: "swatch", style: { background: colour(r) } }),
            `${r}: ${item.contours.filter((c) => c.reader === r).length} slice(s)`,
          ),
        ),
        aiLines.length
          ? h(
              "li",
              { "data-ai": "contours" },
              h("span", { class: "swatch ai", "aria-hidden": "true" }),
              `AI (${[...new Set(aiLines.map((c) => c.model))].join(", ")}): ${aiLines.length} slice(s), dashed`,
            )
          : null,
      ),
    );
  } catch (e) {
    imagesShown();
    viewerBox.append(message(imagesFailedText(e), "error"));
  }
  return () => {
    document.removeEventListener("keydown", onKey);
    viewer?.destroy();
  };
}
