// Adjudication: the queue ranked by uncertainty, and one item with every reader's value and contour,
// the posterior, and the decision.
import { api } from "../../api";
import { ApiError } from "../../api/client";
import type { AdjudicationItem, QueueItem } from "../../api/types";
import { loadStudySeries, studySeries } from "../../dicomweb";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { bars, READER_COLOURS } from "../../ui/charts";
import { fmt, h, loadingIndicator, message, s } from "../../ui/dom";
import type { Vec3 } from "../../viewer/geometry";
import { isArrow, sliceStep } from "../../viewer/keys";
import { Viewer } from "../../viewer/viewer";
import { label } from "../reading/grid";
import { aiConfidenceText, aiContours, aiContoursOnSlice, aiValues } from "./ai";

const itemPath = (projectId: number, q: { case_id: number; joint: string; region: string; lesion: string }) =>
  `/projects/${projectId}/adjudication/${q.case_id}/${q.joint}/${q.region}/${q.lesion}`;

export async function adjudicationQueueView(outlet: HTMLElement, params: Params): Promise<void> {
  const projectId = Number(params.id);
  const main = h("main", { class: "page", id: "main" });
  outlet.append(main);
  const [project, queue] = await Promise.all([api.project(projectId), api.queue(projectId)]);
  main.append(
    h("h1", null, `${project.name} — adjudication`),
    h("p", { class: "sub" }, `${queue.count} item(s) below the certainty threshold, least certain first.`),
    queue.results.length
      ? h(
          "table",
          { class: "table" },
          h("caption", { class: "sr-only" }, "Adjudication queue"),
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              [
                "Case",
                "Joint",
                "Region",
                "Lesion",
                "Consensus",
                "Max posterior",
                "Entropy",
                "Readings",
                "",
              ].map((c) => h("th", { scope: "col" }, c)),
            ),
          ),
          h(
            "tbody",
            null,
            queue.results.map((q) =>
              h(
                "tr",
                null,
                h("td", null, q.case_label),
                h("td", null, label(q.joint)),
                h("td", null, label(q.region)),
                h("td", null, label(q.lesion)),
                h("td", null, String(q.label)),
                h("td", null, fmt(q.max_posterior)),
                h("td", null, fmt(q.entropy)),
                h("td", null, String(q.n_readings)),
                h(
                  "td",
                  null,
                  h(
                    "a",
                    {
                      href: itemPath(projectId, q),
                      "aria-label": `Adjudicate ${q.case_label} ${label(q.joint)} ${label(q.region)} ${label(q.lesion)}`,
                    },
                    "Adjudicate",
                  ),
                ),
              ),
            ),
          ),
        )
      : message("Nothing to adjudicate."),
  );
  const contours = await api.contourQueue(projectId).catch(() => []);
  main.append(
    h("h2", null, "Contours that disagree"),
    contours.length
      ? h(
          "table",
          { class: "table" },
          h("caption", { class: "sr-only" }, "Slices where readers' contours disagree"),
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              ["Case", "Joint", "Slice", "Contours", "Disagreement (mm)", ""].map((c) =>
                h("th", { scope: "col" }, c),
              ),
            ),
          ),
          h(
            "tbody",
            null,
            contours.map((c) =>
              h(
                "tr",
                null,
                h("td", null, c.case_label),
                h("td", null, label(c.joint)),
                h("td", null, String(c.slice_index + 1)),
                h("td", null, String(c.n_contours)),
                h("td", null, fmt(c.disagreement_mm, 1)),
                h(
                  "td",
                  null,
                  h(
                    "a",
                    {
                      href: `/projects/${projectId}/adjudication/${c.case_id}/${c.joint}/joint/sclerosis?slice=${c.slice_index}`,
                    },
                    "View contours",
                  ),
                ),
              ),
            ),
          ),
        )
      : message("No contour disagreements above the threshold."),
  );
}

export async function adjudicationItemView(outlet: HTMLElement, params: Params): Promise<() => void> {
  const openedAt = performance.now();
  document.body.classList.add("reading-room");
  const projectId = Number(params.id);
  const main = h("main", { class: "reading", id: "main" });
  outlet.append(main);
  let item: AdjudicationItem;
  try {
    item = await api.item(projectId, Number(params.case), params.joint, params.region, params.lesion);
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
        h(
          "div",
          { class: "toolbar", role: "toolbar", "aria-label": "Image tools" },
          h(
            "button",
            { type: "button", "aria-label": "Previous slice", onclick: () => void viewer?.step(-1) },
            "▲",
          ),
          sliceLabel,
          h(
            "button",
            { type: "button", "aria-label": "Next slice", onclick: () => void viewer?.step(1) },
            "▼",
          ),
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
          ),
        ),
        ai.map((v) =>
          h(
            "tr",
            { class: "ai-row", "data-ai": v.model },
            h("td", null, h("span", { class: "swatch ai", "aria-hidden": "true" }), `AI (${v.model})`),
            h("td", null, "–"),
            h("td", null, `${v.value} `, h("span", { class: "sub" }, aiConfidenceText(v, item.values))),
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
            const queue = await api.queue(projectId);
            const next = queue.results.find((q: QueueItem) => itemPath(projectId, q) !== location.pathname);
            navigate(next ? itemPath(projectId, next) : `/projects/${projectId}/adjudication`);
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
    viewer = await Viewer.create(viewerBox, loaded, {
      modality,
      openedAt,
      initialSlice: askedSlice !== null ? Number(askedSlice) : firstContour?.slice_index,
    });
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
    viewerBox.append(
      message(`Images could not be loaded: ${e instanceof Error ? e.message : String(e)}`, "error"),
    );
  }
  const onKey = (e: KeyboardEvent) => {
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
  return () => {
    document.removeEventListener("keydown", onKey);
    viewer?.destroy();
  };
}
