import { defineConfig } from 'vitest/config';

// Unit tests: pure logic beside the code. Integration and end-to-end suites live under test/.
export default defineConfig({
  test: {
    include: ['packages/**/*.test.ts', 'services/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
  },
});
