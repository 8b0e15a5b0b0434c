import { defineConfig } from 'vitest/config';

// Integration and end-to-end suites against the real components; one file at a time
// (they share one Docker daemon), long timeouts for builds.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts', 'test/hostile/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/compose/**/*.test.ts', 'test/k8s/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    // The services the suites start run from dist/: compiled first.
    globalSetup: ['test/support/build.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
  },
});
