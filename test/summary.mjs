// Sums the checks and vitest suites of one `npm test` run into the closing line
// "N passed, N failed" (", N skipped" when any were skipped); exits 1 on any failure.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
let passed = 0;
let failed = 0;
let skipped = 0;
const rows = [];
// What failed, named in the summary: CI keeps only the tail of the log.
const failures = [];
for (const file of readdirSync(dir).sort()) {
  const path = join(dir, file);
  if (file.startsWith('check-')) {
    const ok = readFileSync(path, 'utf8').trim() === 'pass';
    if (ok) passed++;
    else failed++;
    rows.push(`${file.slice(6).padEnd(14)} ${ok ? 'passed' : 'FAILED'}`);
  } else if (file.startsWith('suite-')) {
    const r = JSON.parse(readFileSync(path, 'utf8'));
    const p = r.numPassedTests ?? 0;
    // A suite that could not run (a failed file with no tests) counts as a failure.
    const f = (r.numFailedTests ?? 0) + (r.numFailedTestSuites && !r.numFailedTests ? r.numFailedTestSuites : 0);
    const s = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    passed += p;
    failed += f;
    skipped += s;
    rows.push(`${file.slice(6, -5).padEnd(14)} ${p} passed, ${f} failed${s ? `, ${s} skipped` : ''}`);
    for (const testFile of r.testResults ?? []) {
      const where = testFile.name?.replace(/^.*?\/test\//, 'test/') ?? file;
      const failedTests = (testFile.assertionResults ?? []).filter((t) => t.status === 'failed');
      for (const t of failedTests) failures.push({ where, title: t.fullName ?? t.title, message: t.failureMessages?.[0] });
      // A file that failed before any test ran (an import error, a hook).
      if (testFile.status === 'failed' && failedTests.length === 0) {
        failures.push({ where, title: '(the file)', message: testFile.message });
      }
    }
  }
}
if (failures.length > 0) {
  console.log('\n=== failed');
  for (const { where, title, message } of failures) {
    console.log(`  ${where} > ${title}`);
    // The first lines of the error, without colour codes.
    const lines = (message ?? '')
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split('\n')
      .filter((l) => l.trim());
    for (const line of lines.slice(0, 6)) console.log(`      ${line.slice(0, 300)}`);
  }
}
console.log('\n=== summary');
for (const row of rows) console.log(`  ${row}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
