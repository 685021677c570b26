// Cornerstone3D is initialised once per page; everything else in the app goes through viewer/.
import { init as coreInit } from "@cornerstonejs/core";
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
