import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The pages build: landing (/), customer chat (/chat) and agent dashboard (/agent).
// The embeddable widget is a second build (vite.widget.config.ts) into the same folder.

// Where `npm run dev` forwards API and Socket.IO traffic: a supportchat server
// started with `supportchat serve` (port 8000 unless told otherwise).
const devTarget = process.env.SUPPORTCHAT_DEV_TARGET ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  // Everything the server serves lives under /assets/ (plus the three pages and
  // widget.js), so there is no public folder, and no asset is inlined as a data: URL
  // (a Content-Security-Policy can then stay free of `data:`).
  publicDir: false,
  plugins: [react()],
  build: {
    outDir: "../src/supportchat/webui",
    emptyOutDir: true,
    // Keep the build light on small machines: no source maps, no gzip size report.
    sourcemap: false,
    reportCompressedSize: false,
    assetsInlineLimit: 0,
    rolldownOptions: {
      input: {
        index: "index.html",
        chat: "chat.html",
        agent: "agent.html",
      },
    },
  },
  server: {
    port: Number(process.env.SUPPORTCHAT_DEV_PORT ?? 5173),
    strictPort: true,
    proxy: {
      "/api": { target: devTarget, changeOrigin: false },
      "/health": { target: devTarget, changeOrigin: false },
      "/socket.io": { target: devTarget, ws: true, changeOrigin: false },
    },
  },
});
