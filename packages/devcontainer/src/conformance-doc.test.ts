import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * docs/conformance.md is the promise: every property of the spec's base schema has a row, and
 * every test a row names exists (its file holds the test's name).
 */
const ROOT = new URL('../../../', import.meta.url);
const DOCS = new URL('docs/', ROOT);
const doc = readFileSync(new URL('conformance.md', DOCS), 'utf8');
const schema = JSON.parse(readFileSync(new URL('../schemas/devContainer.base.schema.json', import.meta.url), 'utf8')) as {
  definitions: Record<string, { properties?: Record<string, unknown> }>;
};

/** The table's rows: the property cell and the test cell. */
const rows = doc
  .split('\n')
  .filter((l) => l.startsWith('| ') && !/^\|\s*-+\s*\|/.test(l) && !/^\| (Property|Variable) /.test(l))
  .map((l) =>
    l
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim()),
  )
  .filter((cells) => cells.length >= 5)
  .map((cells) => ({ property: cells[0]!, test: cells.at(-1)! }));

describe('docs/conformance.md', () => {
  it('has a row for every property of the spec’s base schema', () => {
    const documented = rows.map((r) => r.property).join(' ');
    const properties = new Set<string>();
    for (const def of ['devContainerCommon', 'nonComposeBase', 'imageContainer', 'composeContainer']) {
      for (const p of Object.keys(schema.definitions[def]?.properties ?? {})) if (p !== 'additionalProperties') properties.add(p);
    }
    for (const p of Object.keys(schema.definitions.buildOptions?.properties ?? {})) properties.add(`build.${p}`);
    properties.add('build.dockerfile');
    properties.add('build.context');
    const missing = [...properties].filter((p) => !documented.includes(`\`${p}\``) && !documented.includes(`\`${p.split('.').pop()}\``));
    expect(missing).toEqual([]);
  });

  it('names a test that exists on every row', () => {
    expect(rows.length).toBeGreaterThan(30);
    for (const { property, test } of rows) {
      const m = /^\[(.+)\]\(\.\.\/(.+)\)$/.exec(test);
      expect(m, `${property}: the test cell is [name](../path)`).not.toBeNull();
      const file = new URL(m![2]!, ROOT);
      expect(existsSync(file), `${property}: ${m![2]} exists`).toBe(true);
      expect(readFileSync(file, 'utf8'), `${property}: ${m![2]} has a test named “${m![1]}”`).toContain(m![1]);
    }
  });
});
