import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDevcontainerJson } from './parse.ts';
import { checkSchema } from './schema.ts';

const sample = (p: string) => parseDevcontainerJson(readFileSync(fileURLToPath(new URL(`../../../samples/${p}`, import.meta.url)), 'utf8'));

describe('checkSchema (the spec’s devContainer.base.schema.json)', () => {
  it('accepts the samples', () => {
    expect(() => checkSchema(sample('simple-devcontainer.json'))).not.toThrow();
    expect(() => checkSchema(sample('python/.devcontainer/devcontainer.json'))).not.toThrow();
  });

  it('refuses schema violations with 422 and every problem in details', () => {
    try {
      checkSchema({ image: 'debian:bookworm', forwardPorts: 'x', runArgs: 'y' });
      expect.unreachable();
    } catch (err) {
      const e = err as { status: number; code: string; details: { problems: Array<{ path: string }> } };
      expect(e.status).toBe(422);
      expect(e.code).toBe('invalid_devcontainer');
      expect(e.details.problems.map((p) => p.path)).toEqual(expect.arrayContaining(['/forwardPorts', '/runArgs']));
    }
  });

  it('checks customizations.vscode by hand', () => {
    expect(() =>
      checkSchema({ image: 'x', customizations: { vscode: { extensions: ['ms-python.python@2024.1.0', 'esbenp.prettier-vscode'] } } }),
    ).not.toThrow();
    expect(() => checkSchema({ image: 'x', customizations: { vscode: { extensions: 'ms-python.python' } } })).toThrow(/extensions/);
    expect(() => checkSchema({ image: 'x', customizations: { vscode: { settings: 'dark' } } })).toThrow(/settings/);
  });
});
