// Open contours: one polyline per joint per slice, start (superior) → end (inferior), in patient mm.
// Points are placed and dragged on the viewer's SVG overlay; the geometry lives in viewer/geometry.ts.
import type { ContourRow } from "../../api";
import { s } from "../../ui/dom";
import { orientSuperiorFirst, round3, type Vec3 } from "../../viewer/geometry";
import type { Pane, Viewer } from "../../viewer/viewer";

export const JOINT_COLOURS: Record<string, string> = { left: "#4fd1ff", right: "#ffb347" };

export class ContourStore {
  /** key `${joint}|${slice}` → {series, points} */
  private map = new Map<string, { seriesUid: string; points: Vec3[] }>();

  key(joint: string, slice: number): string {
    return `${joint}|${slice}`;
  }

  get(joint: string, slice: number): Vec3[] {
    return this.map.get(this.key(joint, slice))?.points ?? [];
  }

  set(joint: string, slice: number, seriesUid: string, points: Vec3[]): void {
    if (points.length) this.map.set(this.key(joint, slice), { seriesUid, points });
    else this.map.delete(this.key(joint, slice));
  }

  onSlice(slice: number): { joint: string; points: Vec3[] }[] {
    const out: { joint: string; points: Vec3[] }[] = [];
    for (const [k, v] of this.map) {
      const [joint, sl] = k.split("|");
      if (Number(sl) === slice) out.push({ joint, points: v.points });
    }
    return out;
  }

  get size(): number {
    return this.map.size;
  }

  /** Rows for the API: superior first, rounded to µm; `complete` keeps only contours with 2+ points. */
  rows(complete = false): ContourRow[] {
    const rows: ContourRow[] = [];
    for (const [k, v] of this.map) {
      const [joint, sl] = k.split("|");
      if (complete && v.points.length < 2) continue;
      rows.push({
        joint,
        series_uid: v.seriesUid,
        slice_index: Number(sl),
        points_mm: (complete ? orientSuperiorFirst(v.points) : v.points).map(round3),
      });
    }
    return rows.sort((a, b) => a.joint.localeCompare(b.joint) || a.slice_index - b.slice_index);
  }

  load(rows: unknown[]): void {
    for (const row of rows) {
      if (!row || typeof row !== "object") continue;
      const r = row as Partial<ContourRow>;
      if (typeof r.joint !== "string" || typeof r.slice_index !== "number" || !Array.isArray(r.points_mm))
        continue;
      const pts = r.points_mm.filter(
        (p) => Array.isArray(p) && p.length === 3 && p.every(Number.isFinite),
      ) as Vec3[];
      this.set(r.joint, r.slice_index, String(r.series_uid ?? ""), pts);
    }
  }
}

/** Paint every contour of the pane's slice; handles for the active joint's contour. */
export function contourPainter(
  store: ContourStore,
  viewer: Viewer,
  active: () => { joint: string; editing: boolean },
) {
  return (pane: Pane, slice: number): SVGElement[] => {
    const out: SVGElement[] = [];
    const { joint: activeJoint, editing } = active();
    for (const { joint, points } of store.onSlice(slice)) {
      const colour = JOINT_COLOURS[joint] ?? "#fff";
      const xy = points.map((p) => viewer.toCanvas(pane, p));
      out.push(
        s("polyline", {
          points: xy.map(([x, y]) => `${x},${y}`).join(" "),
          class: "contour",
          stroke: colour,
          "data-joint": joint,
        }),
      );
      xy.forEach(([x, y], i) => {
        const isStart = i === 0;
        const isEnd = i === xy.length - 1 && xy.length > 1;
        const handle = editing && joint === activeJoint;
        const r = handle ? 5 : isStart || isEnd ? 4 : 2;
        out.push(
          s("circle", {
            cx: x,
            cy: y,
            r,
            fill: isStart ? "#3ddc84" : isEnd ? "#ff5c5c" : colour,
            class: handle ? "handle" : "vertex",
            "data-joint": joint,
            "data-index": i,
          }),
        );
        if (isStart || isEnd)
          out.push(
            s("text", { x: x + 7, y: y - 7, class: "handle-label", fill: colour }, isStart ? "S" : "E"),
          );
      });
    }
    return out;
  };
}

/** Pointer editing on the overlay: click adds a point at the end, drag moves one, right-click deletes one. */
export function attachContourEditing(
  viewer: Viewer,
  store: ContourStore,
  active: () => { joint: string; editing: boolean },
  changed: () => void,
): () => void {
  const offs: (() => void)[] = [];
  for (const pane of viewer.panes) {
    let dragging: number | null = null;
    const local = (e: PointerEvent | MouseEvent): [number, number] => {
      const r = pane.svg.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    const down = (e: PointerEvent) => {
      const { joint, editing } = active();
      if (!editing || e.button !== 0) return;
      e.preventDefault();
      const slice = pane.viewport.getCurrentImageIdIndex();
      const target = e.target as SVGElement;
      if (target.classList.contains("handle") && target.dataset.joint === joint) {
        dragging = Number(target.dataset.index);
        pane.svg.setPointerCapture(e.pointerId);
        return;
      }
      const [x, y] = local(e);
      const points = [...store.get(joint, slice), viewer.toWorld(pane, x, y)];
      store.set(joint, slice, pane.series.seriesUid, points);
      viewer.repaint();
      changed();
    };
    const move = (e: PointerEvent) => {
      if (dragging === null) return;
      const { joint } = active();
      const slice = pane.viewport.getCurrentImageIdIndex();
      const points = [...store.get(joint, slice)];
      const [x, y] = local(e);
      points[dragging] = viewer.toWorld(pane, x, y);
      store.set(joint, slice, pane.series.seriesUid, points);
      viewer.repaint();
    };
    const up = () => {
      if (dragging !== null) changed();
      dragging = null;
    };
    const context = (e: MouseEvent) => {
      e.preventDefault();
      const { joint, editing } = active();
      const target = e.target as SVGElement;
      if (!editing || !target.classList.contains("handle") || target.dataset.joint !== joint) return;
      const slice = pane.viewport.getCurrentImageIdIndex();
      const points = store.get(joint, slice).filter((_, i) => i !== Number(target.dataset.index));
      store.set(joint, slice, pane.series.seriesUid, points);
      viewer.repaint();
      changed();
    };
    pane.svg.addEventListener("pointerdown", down);
    pane.svg.addEventListener("pointermove", move);
    pane.svg.addEventListener("pointerup", up);
    pane.svg.addEventListener("contextmenu", context);
    offs.push(() => {
      pane.svg.removeEventListener("pointerdown", down);
      pane.svg.removeEventListener("pointermove", move);
      pane.svg.removeEventListener("pointerup", up);
      pane.svg.removeEventListener("contextmenu", context);
    });
  }
  return () => offs.forEach((f) => f());
}
