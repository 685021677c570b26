// The viewer's chunk (Cornerstone3D, ~1.7 MB of the app's JavaScript) is loaded on demand, once per page:
// a page that opens a case starts it at once, alongside its API calls (main.ts); any other page starts it
// when the browser is idle, so that the first case opened from a worklist finds it there.
export type ViewerModule = typeof import("./viewerChunk");

let loading: Promise<ViewerModule> | null = null;

/** The viewer's module; the first call starts the download, every call gets the same promise. A failed
 * download (network) is retried on the next call. */
export function loadViewer(): Promise<ViewerModule> {
  if (!loading) {
    loading = import("./viewerChunk");
    // where the time goes (tests/bench/bench_first_image.py --waterfall): the chunk evaluated
    loading.then(
      () => performance.mark("concord:viewer-chunk"),
      () => (loading = null),
    );
  }
  return loading;
}

/** The viewer's module and Cornerstone initialised (WebGL, image loader workers, tools). */
export async function viewerReady(): Promise<ViewerModule> {
  const module = await loadViewer();
  await module.ensureCornerstone();
  if (!performance.getEntriesByName("concord:cornerstone-ready", "mark").length)
    performance.mark("concord:cornerstone-ready");
  return module;
}

/** Start loading the viewer's chunk when the browser has nothing else to do (or within `timeoutMs`). */
export function loadViewerWhenIdle(timeoutMs = 3000): void {
  const start = () => void loadViewer().catch(() => undefined);
  if (typeof requestIdleCallback === "function") requestIdleCallback(start, { timeout: timeoutMs });
  else setTimeout(start, 1000);
}
