import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The embeddable widget: one self-contained classic script (IIFE) that defines the
// global `SupportChat`. Its CSS is imported with `?inline` and placed in the widget's
// shadow root, so this build emits no stylesheet and needs nothing but widget.js.
export default defineConfig({
  base: "/",
  plugins: [react()],
  publicDir: false,
  // Library builds leave `process.env.NODE_ENV` alone; React reads it to pick its
  // production code.
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: "../src/supportchat/webui",
    // The pages build ran first into the same folder: keep what it wrote.
    emptyOutDir: false,
    sourcemap: false,
    reportCompressedSize: false,
    lib: {
      entry: "src/widget/widget.tsx",
      name: "SupportChat",
      formats: ["iife"],
      fileName: () => "widget.js",
    },
  },
});
