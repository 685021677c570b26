// Cornerstone3D is initialised once per page; everything else in the app goes through viewer/.
import {
  Enums,
  RenderingEngine,
  init as coreInit,
  imageLoadPoolManager,
  imageRetrievalPoolManager,
} from "@cornerstonejs/core";
import { init as dicomImageLoaderInit } from "@cornerstonejs/dicom-image-loader";
import {
  Enums as ToolEnums,
  PanTool,
  StackScrollTool,
  type Types as ToolTypes,
  WindowLevelTool,
  ZoomTool,
  addTool,
  init as toolsInit,
} from "@cornerstonejs/tools";

let ready: Promise<void> | null = null;

/** Image downloads in flight at once for background loads (the viewer's prefetch, the streaming volume
 * of a reformat), of the browser's six connections per host: the rest stay free for the image the reader
 * asks for now. Cornerstone lets 200 go (1,000 volume loads queued): opening the coronal reformat sent
 * 85 frame requests at once, and an axial slice the reader moved to waited behind all of them in the
 * browser's queue (the "Slice 96 /" timeout of the e2e test_3, issue 16). */
export const BACKGROUND_DOWNLOADS = 2;

/** Background loads are `RequestType.Prefetch`: few at a time; the reader's own images (Interaction)
 * are picked first from the pools' queues. */
export function limitBackgroundLoads(): void {
  imageRetrievalPoolManager.setMaxSimultaneousRequests(Enums.RequestType.Prefetch, BACKGROUND_DOWNLOADS);
  // Decoding a downloaded image is a load request too: a few ahead of the downloads keeps them busy.
  imageLoadPoolManager.setMaxSimultaneousRequests(Enums.RequestType.Prefetch, 2 * BACKGROUND_DOWNLOADS);
}

export function ensureCornerstone(): Promise<void> {
  if (!ready) {
    ready = (async () => {
      await coreInit();
      limitBackgroundLoads();
      dicomImageLoaderInit({
        maxWebWorkers: Math.max(1, Math.min(2, (navigator.hardwareConcurrency || 2) - 1)),
      });
      toolsInit();
      for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) addTool(tool);
    })();
  }
  return ready;
}

/** The mouse of every view: window/level on the left button, pan on the middle one, zoom on the right.
 * The tool group must hold the three tools. */
export function bindMouseTools(toolGroup: ToolTypes.IToolGroup): void {
  const { Primary, Auxiliary, Secondary } = ToolEnums.MouseBindings;
  toolGroup.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: Primary }] });
  toolGroup.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: Auxiliary }] });
  toolGroup.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: Secondary }] });
}

let engine: RenderingEngine | null = null;

/** The page's one rendering engine: views enable their viewports on it and disable them on leaving.
 * An engine holds its WebGL contexts (seven, Cornerstone's context pool) until the garbage collector
 * finds it, long after destroy(): with an engine per view Chrome warned "Too many active WebGL
 * contexts" after three case switches and dropped the oldest context. */
export function sharedEngine(): RenderingEngine {
  if (!engine || engine.hasBeenDestroyed) engine = new RenderingEngine("concord-engine");
  return engine;
}

/** Disable a view's viewports on the shared engine, whichever of them are still enabled. */
export function releaseViewports(ids: string[]): void {
  const e = engine;
  if (!e || e.hasBeenDestroyed) return;
  for (const id of ids) if (e.getViewport(id)) e.disableElement(id);
}
