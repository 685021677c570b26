import { defineConfig } from "vitest/config";

// Django serves the built files from /static/ (STATICFILES_DIRS → frontend/dist) and index.html for every
// client-side route; `npm run dev` proxies the API and DICOMweb to a local Django on :8000.
const backend = process.env.CONCORD_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/static/",
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
