// Builds the dApp into web/dist, served by `ark-relay dev` under /app/.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/app/',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
});
