// CT: the axial stack and the coronal reformat follow each other. Each view draws where the other's plane
// cuts it, and the last picked point where it lies on the shown axial image; a click on one view moves the
// other through the clicked point. Both views draw the same line (the coronal plane ∩ the axial image),
// each in its own canvas coordinates, so it is written once here.
import { s } from "../../ui/dom";
import { type ImagePlane, nearestSlice, type Vec3 } from "../../viewer/geometry";
import { planeCut, type PlaneCamera } from "../../viewer/mpr";
import type { Reformat } from "../../viewer/reformat";
import type { Viewer } from "../../viewer/viewer";

type Canvas = (world: Vec3) => [number, number];

/** What a view draws of the other, in canvas coordinates: the line where the coronal plane (``cam``) cuts
 * axial image ``index``, and the ``linked`` point when the axial image nearest to it is ``index``. */
export function crossReference(
  planes: ImagePlane[],
  index: number,
  cam: PlaneCamera | null,
  linked: Vec3 | null,
  toCanvas: Canvas,
): { line: [[number, number], [number, number]] | null; mark: [number, number] | null } {
  const plane = planes[index];
  if (!cam || !plane) return { line: null, mark: null };
  const cut = planeCut(plane, cam.focalPoint, cam.viewPlaneNormal);
  return {
    line: cut ? [toCanvas(cut[0]), toCanvas(cut[1])] : null,
    mark: linked && nearestSlice(planes, linked) === index ? toCanvas(linked) : null,
  };
}

function crossReferenceSvg(ref: ReturnType<typeof crossReference>, which: "axial" | "coronal"): SVGElement[] {
  const out: SVGElement[] = [];
  if (ref.line) {
    const [[x1, y1], [x2, y2]] = ref.line;
    out.push(s("line", { x1, y1, x2, y2, class: "reference", "data-ref": which }));
  }
  if (ref.mark) out.push(s("circle", { cx: ref.mark[0], cy: ref.mark[1], r: 6, class: "linked-point" }));
  return out;
}

/** The axial viewer and, while it is shown, the coronal reformat, linked both ways. */
export class LinkedViews {
  /** The last point picked on either view (patient mm): the axial slice and the coronal plane pass through it. */
  private linked: Vec3 | null = null;
  private reformat: Reformat | null = null;

  constructor(private readonly viewer: Viewer) {
    viewer.onPick((_pane, point) => {
      if (!this.reformat?.ready) return;
      this.linked = point;
      this.reformat.moveTo(point);
      viewer.repaint();
    });
    viewer.onSlice(() => this.reformat?.repaint());
    viewer.addPainter((pane, slice) =>
      crossReferenceSvg(
        crossReference(
          pane.series.planes,
          slice,
          this.reformat?.ready ? this.reformat.camera() : null,
          this.linked,
          (p) => viewer.toCanvas(pane, p),
        ),
        "coronal",
      ),
    );
  }

  /** Link a reformat that has just been shown. */
  attach(r: Reformat): void {
    const v = this.viewer;
    const pane = v.panes[0];
    this.reformat = r;
    r.onPick((point) => {
      this.linked = point;
      void v.setSlice(nearestSlice(pane.series.planes, point)).then(() => r.repaint());
    });
    r.onCamera(() => v.repaint());
    r.addPainter((rf) =>
      crossReferenceSvg(
        crossReference(
          pane.series.planes,
          pane.viewport.getCurrentImageIdIndex(),
          rf.camera(),
          this.linked,
          (p) => rf.toCanvas(p),
        ),
        "axial",
      ),
    );
    v.repaint();
  }

  /** The reformat was closed. */
  detach(): void {
    this.reformat = null;
  }
}
