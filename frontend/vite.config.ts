import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

/** A `<link rel="modulepreload">` for the viewer's chunk (Cornerstone3D, src/viewer/viewerChunk.ts) in
 * index.html: the browser fetches and compiles it alongside the small entry bundle, so that a page opening a
 * case has it by the time its case data is in (issue 15, finding 12). It runs when a view imports it. */
function preloadViewerChunk(): Plugin {
  return {
    name: "concord-preload-viewer-chunk",
    apply: "build",
    transformIndexHtml: {
      order: "post",
      handler(_html, ctx) {
        const chunk = Object.values(ctx.bundle ?? {}).find(
          (c) => c.type === "chunk" && c.facadeModuleId?.endsWith("/src/viewer/viewerChunk.ts"),
        );
        if (!chunk) throw new Error("no viewer chunk in the build (src/viewer/viewerChunk.ts)");
        return [
          {
            tag: "link",
            attrs: { rel: "modulepreload", crossorigin: true, href: `/static/${chunk.fileName}` },
            injectTo: "head",
          },
        ];
      },
    },
  };
}

// Django serves the built files from /static/ (STATICFILES_DIRS → frontend/dist) and index.html for every
// client-side route; `npm run dev` proxies the API and DICOMweb to a local Django on :8000.
const backend = process.env.CONCORD_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/static/",
  plugins: [preloadViewerChunk()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    target: "es2022",
    chunkSizeWarningLimit: 6000,
  },
  worker: { format: "es" },
  optimizeDeps: {
    exclude: ["@cornerstonejs/dicom-image-loader"],
    include: [
      "dicom-parser",
      "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs",
      "@cornerstonejs/codec-charls/decodewasmjs",
      "@cornerstonejs/codec-openjpeg/decodewasmjs",
      "@cornerstonejs/codec-openjph/wasmjs",
    ],
  },
  server: {
    host: "127.0.0.1",
    proxy: { "/api": backend, "/dicomweb": backend, "/admin": backend },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
