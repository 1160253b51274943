import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The built app is served by the dev gateway (web/dist) and, in AWS, from S3 behind
// CloudFront; both are same-origin with /api, so no proxy or CORS is involved.
export default defineConfig({
  plugins: [preact()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
});
