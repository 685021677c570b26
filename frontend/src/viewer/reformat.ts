// A multiplanar reformat of one series (CT: coronal from the axial stack) in an orthographic volume viewport,
// with an SVG overlay and a click → patient-point hook so that a view can link it to the axial stack (see
// mpr.ts). Own tool group on the shared rendering engine; created on demand, destroyed with the view.
import {
  Enums,
  type RenderingEngine,
  type Types,
  cache,
  cornerstoneStreamingImageVolumeLoader,
  volumeLoader,
} from "@cornerstonejs/core";
import {
  Enums as ToolEnums,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";
import type { LoadedSeries } from "../dicomweb";
import { h, s } from "../ui/dom";
import { bindMouseTools, ensureCornerstone, releaseViewports, sharedEngine } from "./cornerstone";
import { dot, type Vec3 } from "./geometry";
import { cameraThrough, type PlaneCamera } from "./mpr";
import { cameraMarkers, type Markers, windowText } from "./orientation";
import { presetRange, presetsFor } from "./presets";

/** A click that did not drag (window/level, pan and zoom drag) picks a point. */
const CLICK_SLOP_PX = 4;

let registered = false;
let counter = 0;

export type ReformatPainter = (r: Reformat) => SVGElement[];

export class Reformat {
  private engine: RenderingEngine;
  private toolGroupId: string;
  private volumeId: string;
  private destroyed = false;
  private painters: ReformatPainter[] = [];
  private cameraListeners: (() => void)[] = [];
  private disposers: (() => void)[] = [];
  private viewport: Types.IVolumeViewport | null = null;
  private element: HTMLDivElement | null = null;
  private svg: SVGSVGElement | null = null;
  private edges: Record<keyof Markers, HTMLElement> | null = null;
  private where: HTMLElement | null = null;
  private voi: HTMLElement | null = null;
  /** Set once the volume is on screen. */
  ready = false;

  private constructor(
    readonly container: HTMLElement,
    series: LoadedSeries,
  ) {
    const n = ++counter;
    this.engine = sharedEngine();
    this.toolGroupId = `concord-reformat-tools-${n}`;
    this.volumeId = `cornerstoneStreamingImageVolume:concord-${n}-${series.seriesUid}`;
  }

  static async create(
    container: HTMLElement,
    series: LoadedSeries,
    orientation: Enums.OrientationAxis = Enums.OrientationAxis.CORONAL,
  ): Promise<Reformat> {
    await ensureCornerstone();
    if (!registered) {
      volumeLoader.registerVolumeLoader(
        "cornerstoneStreamingImageVolume",
        cornerstoneStreamingImageVolumeLoader as unknown as Parameters<
          typeof volumeLoader.registerVolumeLoader
        >[1],
      );
      registered = true;
    }
    const r = new Reformat(container, series);
    const element = h("div", { class: "cs-element" }) as HTMLDivElement;
    element.oncontextmenu = (e) => e.preventDefault();
    const svg = s("svg", { class: "overlay", "aria-hidden": "true" }) as SVGSVGElement;
    r.element = element;
    r.svg = svg;
    // The same overlay as the stack panes: orientation markers at the edges, window bottom left, slice and
    // position bottom right, as OHIF places them (filled once the volume is on screen).
    const edge = (side: keyof Markers) => h("span", { class: `marker marker-${side}`, "data-marker": side });
    r.edges = { top: edge("top"), bottom: edge("bottom"), left: edge("left"), right: edge("right") };
    r.where = h("span", { class: "pane-info pane-where", "data-testid": "pane-where" });
    r.voi = h("span", { class: "pane-info pane-voi", "data-testid": "pane-voi" });
    container.append(
      h(
        "figure",
        { class: "pane", "aria-label": `${orientation} reformat` },
        h("figcaption", { class: "pane-label" }, `${series.description || series.modality} — ${orientation}`),
        element,
        svg,
        ...Object.values(r.edges),
        r.where,
        r.voi,
      ),
    );
    const viewportId = `${r.toolGroupId}-vp`;
    r.engine.enableElement({
      viewportId,
      type: Enums.ViewportType.ORTHOGRAPHIC,
      element,
      defaultOptions: { orientation, background: [0, 0, 0] as Types.Point3 },
    });
    const toolGroup = ToolGroupManager.createToolGroup(r.toolGroupId);
    if (toolGroup) {
      for (const name of [
        WindowLevelTool.toolName,
        PanTool.toolName,
        ZoomTool.toolName,
        StackScrollTool.toolName,
      ])
        toolGroup.addTool(name);
      toolGroup.addViewport(viewportId, r.engine.id);
      bindMouseTools(toolGroup);
      toolGroup.setToolActive(StackScrollTool.toolName, {
        bindings: [{ mouseButton: ToolEnums.MouseBindings.Wheel }],
      });
    }
    const volume = await volumeLoader.createAndCacheVolume(r.volumeId, { imageIds: series.imageIds });
    if (r.destroyed) return r;
    (volume as { load?: () => void }).load?.();
    const viewport = r.engine.getViewport(viewportId) as Types.IVolumeViewport;
    r.viewport = viewport;
    r.listen(element, Enums.Events.CAMERA_MODIFIED, () => {
      r.repaint();
      for (const fn of r.cameraListeners) fn();
    });
    r.listen(element, Enums.Events.IMAGE_RENDERED, () => {
      r.repaint();
      r.updateOverlay();
    });
    await viewport.setVolumes([{ volumeId: r.volumeId }]);
    if (r.destroyed) return r;
    const preset = presetsFor(series.modality)[0];
    viewport.setProperties({ voiRange: presetRange(preset, { lower: 0, upper: 1 }) });
    viewport.render();
    r.ready = true;
    r.updateOverlay();
    container.dataset.reformatReady = "true";
    return r;
  }

  private updateOverlay(): void {
    const viewport = this.viewport;
    const cam = this.camera();
    if (!viewport || !cam || !this.ready) return;
    const up = viewport.getCamera().viewUp;
    if (up && this.edges) {
      const m = cameraMarkers([...up] as Vec3, cam.viewPlaneNormal);
      for (const side of Object.keys(this.edges) as (keyof Markers)[])
        if (this.edges[side].textContent !== m[side]) this.edges[side].textContent = m[side];
    }
    if (this.where) {
      const n = viewport.getNumberOfSlices();
      const position = dot(cam.focalPoint, cam.viewPlaneNormal);
      this.where.textContent = `${viewport.getSliceIndex() + 1}/${n} · ${position.toFixed(1)} mm`;
    }
    if (this.voi) this.voi.textContent = windowText(viewport.getProperties()?.voiRange);
  }

  private listen(target: EventTarget, type: string, fn: (e: Event) => void): void {
    target.addEventListener(type, fn);
    this.disposers.push(() => target.removeEventListener(type, fn));
  }

  /** True once every slice of the volume is loaded (it streams in after the first render). */
  volumeLoaded(): boolean {
    const volume = cache.getVolume(this.volumeId) as { loadStatus?: { loaded?: boolean } } | undefined;
    return volume?.loadStatus?.loaded === true;
  }

  /** The viewed plane: focal point (in the plane), camera position and unit normal, in patient mm. */
  camera(): PlaneCamera | null {
    if (!this.viewport) return null;
    const cam = this.viewport.getCamera();
    if (!cam.focalPoint || !cam.position || !cam.viewPlaneNormal) return null;
    return {
      focalPoint: [...cam.focalPoint] as Vec3,
      position: [...cam.position] as Vec3,
      viewPlaneNormal: [...cam.viewPlaneNormal] as Vec3,
    };
  }

  /** Move the reformatted plane (along its normal only) so that it passes through `point`. */
  moveTo(point: Vec3): void {
    const cam = this.camera();
    if (!cam || !this.viewport) return;
    this.viewport.setCamera(cameraThrough(cam, point) as Partial<Types.ICamera>);
    this.viewport.render();
  }

  toCanvas(world: Vec3): [number, number] {
    const [x, y] = this.viewport!.worldToCanvas(world as Types.Point3);
    return [x, y];
  }

  toWorld(x: number, y: number): Vec3 {
    return [...this.viewport!.canvasToWorld([x, y])] as Vec3;
  }

  /** `fn(point)` on a click (not a drag) on the image, with the patient point under the pointer. */
  onPick(fn: (point: Vec3) => void): void {
    const element = this.element;
    if (!element) return;
    let down: [number, number] | null = null;
    this.listen(element, "pointerdown", (e) => {
      const p = e as PointerEvent;
      down = p.button === 0 ? [p.clientX, p.clientY] : null;
    });
    this.listen(element, "pointerup", (e) => {
      const p = e as PointerEvent;
      if (!down || Math.hypot(p.clientX - down[0], p.clientY - down[1]) > CLICK_SLOP_PX) return;
      down = null;
      const rect = element.getBoundingClientRect();
      fn(this.toWorld(p.clientX - rect.left, p.clientY - rect.top));
    });
  }

  /** `fn()` after the plane moved (scrolling, a pick elsewhere) or the view zoomed or panned. */
  onCamera(fn: () => void): void {
    this.cameraListeners.push(fn);
  }

  addPainter(painter: ReformatPainter): void {
    this.painters.push(painter);
    this.repaint();
  }

  repaint(): void {
    if (this.destroyed || !this.svg || !this.element || !this.ready) return;
    const rect = this.element.getBoundingClientRect();
    this.svg.setAttribute("viewBox", `0 0 ${rect.width} ${rect.height}`);
    this.svg.replaceChildren(...this.painters.flatMap((p) => p(this)));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const d of this.disposers.splice(0)) d();
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    releaseViewports([`${this.toolGroupId}-vp`]);
    cache.removeVolumeLoadObject(this.volumeId);
    delete this.container.dataset.reformatReady;
    this.container.replaceChildren();
  }
}
