// A set of Cornerstone3D stack viewports side by side, with synchronised slice, zoom/pan and crosshair,
// window/level presets and an SVG overlay per pane for contours. Created on mount, destroyed on unmount.
import { Enums, type RenderingEngine, type Types, eventTarget, imageLoader } from "@cornerstonejs/core";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";
import { PanTool, ToolGroupManager, WindowLevelTool, ZoomTool } from "@cornerstonejs/tools";
import { imageLoadFailureMessage, type LoadedSeries } from "../dicomweb";
import { h, s } from "../ui/dom";
import { bindMouseTools, ensureCornerstone, releaseViewports, sharedEngine } from "./cornerstone";
import { projectOntoPlane, syncedSliceIndex, type Vec3 } from "./geometry";
import { markers, type Markers, slicePosition, windowText } from "./orientation";
import { prefetchOrder } from "./prefetch";
import { presetRange, presetsFor, type Preset } from "./presets";
import { chooseVoi, headerWindow, percentileRange } from "./voi";

export interface Pane {
  id: string;
  series: LoadedSeries;
  root: HTMLElement;
  element: HTMLDivElement;
  svg: SVGSVGElement;
  viewport: Types.IStackViewport;
  auto: { lower: number; upper: number } | null;
  /** Where the initial window came from: the DICOM header, or the pixel percentiles (header missing or
   * implausible). */
  voiSource: "header" | "pixels" | null;
  /** Set once the stack's first image is loaded (renders before that are of an empty viewport). */
  hasImage: boolean;
}

export type Painter = (pane: Pane, slice: number) => SVGElement[];

let counter = 0;
/** A click that did not drag (window/level, pan and zoom drag) picks a point. */
const CLICK_SLOP_PX = 4;
/** Background image requests in flight at once (of the browser's six per host). */
const PREFETCH_CONCURRENCY = 2;
/** Wheel travel (px) that makes one slice step: a mouse notch is 100–120 px, a touchpad sends small deltas. */
const WHEEL_NOTCH_PX = 40;
const WHEEL_LINE_PX = 40;

export class Viewer {
  readonly panes: Pane[] = [];
  readonly presets: Preset[];
  private engine: RenderingEngine;
  private toolGroupId: string;
  private painters: Painter[] = [];
  private syncing = false;
  private crosshair: Vec3 | null = null;
  private sliceListeners: ((i: number) => void)[] = [];
  private disposers: (() => void)[] = [];
  private destroyed = false;
  slice = 0;
  presetIndex = 0;
  firstImageMs: number | null = null;

  private constructor(
    readonly container: HTMLElement,
    readonly modality: string,
    private readonly openedAt: number,
  ) {
    const n = ++counter;
    this.engine = sharedEngine();
    this.toolGroupId = `concord-tools-${n}`;
    this.presets = presetsFor(modality);
  }

  /** Build the panes and show the middle slice (or `initialSlice`). `openedAt` is performance.now() of opening. */
  static async create(
    container: HTMLElement,
    series: LoadedSeries[],
    opts: { modality: string; openedAt: number; initialSlice?: number; labels?: string[] },
  ): Promise<Viewer> {
    await ensureCornerstone();
    for (const s of series)
      for (const inst of s.instances)
        dicomImageLoader.wadors.metaDataManager.add(inst.imageId, inst.metadata as never);
    const viewer = new Viewer(container, opts.modality, opts.openedAt);
    viewer.build(series, opts.labels ?? series.map((s) => s.description || s.modality));
    const first = series[0];
    const middle = opts.initialSlice ?? Math.floor((first?.imageIds.length ?? 1) / 2);
    viewer.slice = Math.min(Math.max(middle, 0), Math.max((first?.imageIds.length ?? 1) - 1, 0));
    // Fetch the shown slice of every pane first, render each as soon as it is there, then prefetch the rest.
    await Promise.all(
      viewer.panes.map(async (p) => {
        await p.viewport.setStack(p.series.imageIds, viewer.indexFor(p, viewer.slice));
        if (viewer.destroyed) return;
        // where the first image's time goes (tests/bench/bench_first_image.py): loaded and decoded by now
        if (!performance.getEntriesByName("concord:first-decoded", "mark").length)
          performance.mark("concord:first-decoded");
        p.viewport.resetCamera(); // fit this image, whatever camera another pane's sync left
        p.hasImage = true;
        const voi = seriesVoi(p.viewport.getCornerstoneImage());
        if (voi) {
          p.auto = voi.range;
          p.voiSource = voi.source;
          p.viewport.setProperties({ voiRange: voi.range }); // kept for every slice of the stack
        } else {
          const range = p.viewport.getProperties().voiRange;
          p.auto = range ? { lower: range.lower, upper: range.upper } : null;
        }
        p.viewport.render();
      }),
    );
    if (!viewer.destroyed) viewer.prefetch();
    return viewer;
  }

  private build(series: LoadedSeries[], labels: string[]): void {
    this.container.classList.add("viewer", `viewer-${series.length}`);
    this.watchImageServer(series);
    const toolGroup = ToolGroupManager.createToolGroup(this.toolGroupId);
    if (!toolGroup) throw new Error("could not create the tool group");
    for (const name of [WindowLevelTool.toolName, PanTool.toolName, ZoomTool.toolName])
      toolGroup.addTool(name);
    bindMouseTools(toolGroup);

    series.forEach((ser, i) => {
      const id = `${this.toolGroupId}-vp${i}`;
      const element = h("div", { class: "cs-element", "data-series": ser.seriesUid }) as HTMLDivElement;
      element.oncontextmenu = (e) => e.preventDefault();
      const svg = s("svg", { class: "overlay", "aria-hidden": "true" }) as SVGSVGElement;
      // Orientation markers at the edges and the figures a reader checks (slice, position, window).
      const edge = (side: keyof Markers) =>
        h("span", { class: `marker marker-${side}`, "data-marker": side });
      const edges = { top: edge("top"), bottom: edge("bottom"), left: edge("left"), right: edge("right") };
      const where = h("span", { class: "pane-info pane-where", "data-testid": "pane-where" });
      const voi = h("span", { class: "pane-info pane-voi", "data-testid": "pane-voi" });
      const root = h(
        "figure",
        { class: "pane", "data-pane": String(i), "aria-label": `${labels[i]} image` },
        h("figcaption", { class: "pane-label" }, labels[i]),
        element,
        svg,
        ...Object.values(edges),
        where,
        voi,
      );
      this.container.appendChild(root);
      this.engine.enableElement({
        viewportId: id,
        type: Enums.ViewportType.STACK,
        element,
        defaultOptions: { background: [0, 0, 0] as Types.Point3 },
      });
      toolGroup.addViewport(id, this.engine.id);
      const viewport = this.engine.getViewport(id) as Types.IStackViewport;
      const pane: Pane = {
        id,
        series: ser,
        root,
        element,
        svg,
        viewport,
        auto: null,
        voiSource: null,
        hasImage: false,
      };
      this.panes.push(pane);
      this.listen(element, Enums.Events.IMAGE_RENDERED, () => {
        if (this.firstImageMs === null && pane.hasImage) {
          this.firstImageMs = performance.now() - this.openedAt;
          performance.mark("concord:first-image");
          this.container.dataset.firstImageMs = this.firstImageMs.toFixed(0);
          console.info(`[concord] first image on screen after ${this.firstImageMs.toFixed(0)} ms`);
        }
        this.paint(pane);
        const index = viewport.getCurrentImageIdIndex();
        const plane = ser.planes[index];
        if (plane) {
          const m = markers(plane);
          for (const side of Object.keys(edges) as (keyof Markers)[])
            if (edges[side].textContent !== m[side]) edges[side].textContent = m[side];
          where.textContent = `${index + 1}/${ser.planes.length} · ${slicePosition(plane).toFixed(1)} mm`;
        }
        voi.textContent = pane.hasImage ? windowText(viewport.getProperties().voiRange) : "";
      });
      this.listen(element, Enums.Events.STACK_NEW_IMAGE, (e) => {
        const index = (e as CustomEvent<{ imageIdIndex: number }>).detail.imageIdIndex;
        this.onPaneSlice(pane, index);
      });
      this.listen(element, Enums.Events.CAMERA_MODIFIED, () => this.syncCamera(pane));
      this.listen(element, "pointermove", (e) => this.moveCrosshair(pane, e as PointerEvent));
      // The wheel over any part of the pane (image, overlay, label) scrolls one slice per notch, whatever
      // has the focus and whether the contour tool is on; Cornerstone's own stack scroll is not bound.
      let wheelAcc = 0;
      this.listen(root, "wheel", (e) => {
        const w = e as WheelEvent;
        e.preventDefault();
        e.stopPropagation();
        wheelAcc += w.deltaMode === WheelEvent.DOM_DELTA_LINE ? w.deltaY * WHEEL_LINE_PX : w.deltaY;
        if (Math.abs(wheelAcc) < WHEEL_NOTCH_PX) return;
        const step = Math.sign(wheelAcc);
        wheelAcc = 0;
        void this.step(step);
      });
    });
    const resize = new ResizeObserver(() => {
      if (!this.destroyed) this.engine.resize(true, false);
    });
    resize.observe(this.container);
    this.disposers.push(() => resize.disconnect());
  }

  /** While images of this viewer fail to load because the image server is down, say so over the panes (a
   * slice that never arrives would otherwise stay black); the notice goes once an image of it loads again. */
  private watchImageServer(series: LoadedSeries[]): void {
    const ours = new Set(series.flatMap((s) => s.imageIds));
    let notice: HTMLElement | null = null;
    this.listen(eventTarget, Enums.Events.IMAGE_LOAD_FAILED, (e) => {
      const { imageId, error } = (e as CustomEvent<{ imageId: string; error: unknown }>).detail;
      const text = ours.has(imageId) ? imageLoadFailureMessage(error) : null;
      if (!text || notice?.isConnected) return;
      notice = h(
        "p",
        { class: "msg error viewer-notice", role: "alert", "data-testid": "image-server-down" },
        text,
      );
      this.container.prepend(notice);
    });
    this.listen(eventTarget, Enums.Events.IMAGE_LOADED, (e) => {
      const image = (e as CustomEvent<{ image?: { imageId?: string } }>).detail.image;
      if (notice && image?.imageId && ours.has(image.imageId)) {
        notice.remove();
        notice = null;
      }
    });
  }

  private listen(target: EventTarget, type: string, fn: (e: Event) => void): void {
    target.addEventListener(type, fn);
    this.disposers.push(() => target.removeEventListener(type, fn));
  }

  /** Load the other slices in the background, nearest to the shown one first, a few at a time: the browser
   * opens at most six connections per host, and drafts and other API calls must not queue behind images. */
  private prefetch(): void {
    const ids = prefetchOrder(
      this.panes.map((p) => p.series.imageIds),
      this.panes.map((p) => this.indexFor(p, this.slice)),
    );
    let next = 0;
    const worker = async () => {
      while (!this.destroyed && next < ids.length) {
        // Prefetch, not the default Interaction: it yields to the images the reader asks for now.
        await imageLoader
          .loadAndCacheImage(ids[next++], { requestType: Enums.RequestType.Prefetch, priority: 0 })
          .catch(() => undefined);
      }
    };
    for (let k = 0; k < PREFETCH_CONCURRENCY; k++) void worker();
  }

  /** Index in a pane's stack for the viewer's reference slice (the first pane's index). */
  private indexFor(pane: Pane, slice: number): number {
    const ref = this.panes[0];
    if (!ref || pane === ref) return slice;
    return syncedSliceIndex(ref.series.planes, slice, pane.series.planes);
  }

  get sliceCount(): number {
    return this.panes[0]?.series.imageIds.length ?? 0;
  }

  onSlice(fn: (i: number) => void): void {
    this.sliceListeners.push(fn);
  }

  private onPaneSlice(pane: Pane, index: number): void {
    if (this.syncing) {
      this.paint(pane);
      return;
    }
    const ref = this.panes[0];
    const refIndex = pane === ref ? index : syncedSliceIndex(pane.series.planes, index, ref.series.planes);
    this.setSlice(refIndex, pane);
  }

  async setSlice(index: number, from?: Pane): Promise<void> {
    const i = Math.min(Math.max(index, 0), this.sliceCount - 1);
    const changed = i !== this.slice;
    this.slice = i;
    this.syncing = true;
    try {
      await Promise.all(
        this.panes
          .filter((p) => p !== from || p.viewport.getCurrentImageIdIndex() !== this.indexFor(p, i))
          .map((p) => {
            const target = this.indexFor(p, i);
            return p.viewport.getCurrentImageIdIndex() === target
              ? undefined
              : p.viewport.setImageIdIndex(target);
          }),
      );
    } finally {
      this.syncing = false;
    }
    this.repaint();
    if (changed) for (const fn of this.sliceListeners) fn(i);
  }

  step(delta: number): Promise<void> {
    return this.setSlice(this.slice + delta);
  }

  /** Zoom/pan of `source` to the other panes. Only between panes showing an image: a pane still waiting
   * for its first image has a default camera (far out, off centre) that must not spread to the others. */
  private syncCamera(source: Pane): void {
    if (this.syncing || !source.hasImage) {
      this.paint(source);
      return;
    }
    this.syncing = true;
    try {
      const cam = source.viewport.getCamera();
      for (const p of this.panes) {
        if (p === source || !p.hasImage) continue;
        p.viewport.setCamera({
          parallelScale: cam.parallelScale,
          focalPoint: cam.focalPoint,
          position: cam.position,
        });
        p.viewport.render();
      }
    } finally {
      this.syncing = false;
    }
    this.repaint();
  }

  resetView(): void {
    for (const p of this.panes) {
      p.viewport.resetCamera();
      p.viewport.render();
    }
    this.syncCamera(this.panes[0]);
  }

  applyPreset(index: number): Preset {
    this.presetIndex = ((index % this.presets.length) + this.presets.length) % this.presets.length;
    const preset = this.presets[this.presetIndex];
    for (const p of this.panes) {
      const auto = p.auto ?? p.viewport.getProperties().voiRange ?? { lower: 0, upper: 1 };
      p.viewport.setProperties({ voiRange: presetRange(preset, auto) });
      p.viewport.render();
    }
    return preset;
  }

  private moveCrosshair(pane: Pane, e: PointerEvent): void {
    const rect = pane.element.getBoundingClientRect();
    this.crosshair = pane.viewport.canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]) as Vec3;
    this.repaint();
  }

  /** Canvas (CSS px) → patient mm, projected exactly onto the pane's current slice plane. */
  toWorld(pane: Pane, x: number, y: number): Vec3 {
    const world = pane.viewport.canvasToWorld([x, y]) as Vec3;
    const plane = pane.series.planes[pane.viewport.getCurrentImageIdIndex()];
    return plane ? projectOntoPlane(plane, world) : world;
  }

  toCanvas(pane: Pane, world: Vec3): [number, number] {
    const [x, y] = pane.viewport.worldToCanvas(world as Types.Point3);
    return [x, y];
  }

  /** `fn(pane, point)` on a click (not a window/level, pan or zoom drag) on a pane's image, with the patient
   * point under the pointer projected onto the pane's slice. */
  onPick(fn: (pane: Pane, point: Vec3) => void): void {
    for (const pane of this.panes) {
      let down: [number, number] | null = null;
      this.listen(pane.element, "pointerdown", (e) => {
        const p = e as PointerEvent;
        down = p.button === 0 ? [p.clientX, p.clientY] : null;
      });
      this.listen(pane.element, "pointerup", (e) => {
        const p = e as PointerEvent;
        if (!down || Math.hypot(p.clientX - down[0], p.clientY - down[1]) > CLICK_SLOP_PX) return;
        down = null;
        const rect = pane.element.getBoundingClientRect();
        fn(pane, this.toWorld(pane, p.clientX - rect.left, p.clientY - rect.top));
      });
    }
  }

  addPainter(painter: Painter): void {
    this.painters.push(painter);
    this.repaint();
  }

  setInteractive(on: boolean): void {
    for (const p of this.panes) p.svg.classList.toggle("interactive", on);
  }

  repaint(): void {
    for (const p of this.panes) this.paint(p);
  }

  private paint(pane: Pane): void {
    if (this.destroyed) return;
    const rect = pane.element.getBoundingClientRect();
    pane.svg.setAttribute("viewBox", `0 0 ${rect.width} ${rect.height}`);
    const children: SVGElement[] = [];
    const index = pane.viewport.getCurrentImageIdIndex();
    if (this.crosshair) {
      const [x, y] = this.toCanvas(pane, this.crosshair);
      children.push(
        s("line", { x1: x, y1: 0, x2: x, y2: rect.height, class: "crosshair" }),
        s("line", { x1: 0, y1: y, x2: rect.width, y2: y, class: "crosshair" }),
      );
    }
    for (const painter of this.painters) children.push(...painter(pane, index));
    pane.svg.replaceChildren(...children);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const d of this.disposers.splice(0)) d();
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    releaseViewports(this.panes.map((p) => p.id));
    this.container.replaceChildren();
  }
}

/** The window a series opens with: the header's if it suits the pixels of the shown slice, else theirs. */
function seriesVoi(image: Types.IImage | undefined): ReturnType<typeof chooseVoi> {
  if (!image || image.color) return null;
  const scaled = image.preScale?.scaled === true;
  const data = percentileRange(
    image.getPixelData(),
    scaled ? 1 : (image.slope ?? 1),
    scaled ? 0 : (image.intercept ?? 0),
  );
  return chooseVoi(headerWindow(image.windowCenter, image.windowWidth), data);
}
