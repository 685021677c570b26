// Cornerstone3D is initialised once per page; everything else in the app goes through viewer/.
import { init as coreInit, setUseCPURendering } from "@cornerstonejs/core";
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
      if (softwareWebGL()) setUseCPURendering(true); // a software GL renderer is slower than the CPU path
      dicomImageLoaderInit({
        maxWebWorkers: Math.max(1, Math.min(2, (navigator.hardwareConcurrency || 2) - 1)),
      });
      toolsInit();
      for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) addTool(tool);
    })();
  }
  return ready;
}

/** True when WebGL runs on a software rasteriser (SwiftShader, llvmpipe): no GPU to gain from. */
export function softwareWebGL(): boolean {
  try {
    const gl = document.createElement("canvas").getContext("webgl2");
    if (!gl) return false;
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = String(
      info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER),
    );
    gl.getExtension("WEBGL_lose_context")?.loseContext();
    return /swiftshader|llvmpipe|software/i.test(renderer);
  } catch {
    return false;
  }
}
