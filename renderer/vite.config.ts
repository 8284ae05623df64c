// The renderer's build: root is this folder, output goes to out/renderer, and `base: './'` makes
// every asset URL relative so the page also loads from file:// inside Electron.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  plugins: [svelte()],
  build: {
    outDir: fileURLToPath(new URL('../out/renderer', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
  },
  // The contract lives in ../contract: let the dev server read it.
  server: { fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
});
