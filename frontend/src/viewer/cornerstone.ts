// Cornerstone3D is initialised once per page; everything else in the app goes through viewer/.
import { RenderingEngine, init as coreInit } from "@cornerstonejs/core";
import { init as dicomImageLoaderInit } from "@cornerstonejs/dicom-image-loader";
import {
  PanTool,
  StackScrollTool,
  WindowLevelTool,
  ZoomTool,
  addTool,
  init as toolsInit,
} from "@cornerstonejs/tools";

let ready: Promise<void> | null = null;

export function ensureCornerstone(): Promise<void> {
  if (!ready) {
    ready = (async () => {
      await coreInit();
      dicomImageLoaderInit({
        maxWebWorkers: Math.max(1, Math.min(2, (navigator.hardwareConcurrency || 2) - 1)),
      });
      toolsInit();
      for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) addTool(tool);
    })();
  }
  return ready;
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
