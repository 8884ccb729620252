// The web app's build: one hashed script and one hashed style sheet under assets/,
// no source maps, nothing inlined into index.html (the page's CSP allows no inline
// script), and no timestamps, so a rebuild from the same sources gives the same bytes.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/app/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
