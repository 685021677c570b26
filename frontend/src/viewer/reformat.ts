// A multiplanar reformat of one series (CT: coronal from the axial stack) in an orthographic volume viewport.
// Own rendering engine and tool group; created on demand, destroyed with the view.
import {
  Enums,
  RenderingEngine,
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
import { h } from "../ui/dom";
import { ensureCornerstone } from "./cornerstone";
import { presetRange, presetsFor } from "./presets";

let registered = false;
let counter = 0;

export class Reformat {
  private engine: RenderingEngine;
  private toolGroupId: string;
  private volumeId: string;
  private destroyed = false;

  private constructor(
    readonly container: HTMLElement,
    series: LoadedSeries,
  ) {
    const n = ++counter;
    this.engine = new RenderingEngine(`concord-reformat-${n}`);
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
    container.append(
      h(
        "figure",
        { class: "pane", "aria-label": `${orientation} reformat` },
        h("figcaption", { class: "pane-label" }, `${series.description || series.modality} — ${orientation}`),
        element,
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
      toolGroup.setToolActive(WindowLevelTool.toolName, {
        bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }],
      });
      toolGroup.setToolActive(PanTool.toolName, {
        bindings: [{ mouseButton: ToolEnums.MouseBindings.Auxiliary }],
      });
      toolGroup.setToolActive(ZoomTool.toolName, {
        bindings: [{ mouseButton: ToolEnums.MouseBindings.Secondary }],
      });
      toolGroup.setToolActive(StackScrollTool.toolName, {
        bindings: [{ mouseButton: ToolEnums.MouseBindings.Wheel }],
      });
    }
    const volume = await volumeLoader.createAndCacheVolume(r.volumeId, { imageIds: series.imageIds });
    if (r.destroyed) return r;
    (volume as { load?: () => void }).load?.();
    const viewport = r.engine.getViewport(viewportId) as Types.IVolumeViewport;
    await viewport.setVolumes([{ volumeId: r.volumeId }]);
    const preset = presetsFor(series.modality)[0];
    viewport.setProperties({ voiRange: presetRange(preset, { lower: 0, upper: 1 }) });
    viewport.render();
    return r;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    this.engine.destroy();
    cache.removeVolumeLoadObject(this.volumeId);
    this.container.replaceChildren();
  }
}
