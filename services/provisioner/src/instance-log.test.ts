import { describe, expect, it } from 'vitest';
import { MAX_INSTANCE_LOG_LINE_BYTES, cleanLine, lifecycleFailureWarning, parseLifecycleLine } from './instance-log.ts';

const line = (json: string) => `[codebay-launcher] 2026-12-01T18:00:00.000Z lifecycle ${json}`;

describe('parseLifecycleLine', () => {
  it('reads the launcher’s three kinds of line', () => {
    expect(parseLifecycleLine(line('{"phase":"postCreateCommand","state":"failed","exitCode":3,"durationMs":120,"command":"npm ci","tail":["boom"]}'))).toEqual(
      {
        kind: 'command',
        phase: 'postCreateCommand',
        state: 'failed',
        exitCode: 3,
        durationMs: 120,
        command: 'npm ci',
        tail: ['boom'],
      },
    );
    expect(parseLifecycleLine(line('{"event":"started","ok":false}'))).toEqual({ kind: 'started', ok: false });
    expect(parseLifecycleLine(line('{"warning":{"property":"remoteUser","message":"remoteUser: cannot switch"}}'))).toEqual({
      kind: 'warning',
      warning: { property: 'remoteUser', message: 'remoteUser: cannot switch' },
    });
    const extensions = 'customizations.vscode.extensions: acme.tool (exit code 1): failed to install at start; not installed';
    expect(parseLifecycleLine(line(JSON.stringify({ warning: { property: 'customizations.vscode.extensions', message: extensions } })))).toEqual({
      kind: 'warning',
      warning: { property: 'customizations.vscode.extensions', message: extensions },
    });
  });

  it('treats anything else as plain output: unknown commands, states and warning properties, bad JSON', () => {
    for (const json of [
      '{}',
      '{"phase":"evilCommand","state":"failed"}',
      '{"phase":"postCreateCommand","state":"exploded"}',
      '{"warning":{"property":"features[\\"x\\"].privileged","message":"phish"}}',
      '{"warning":{"property":"customizations.vscode.settings","message":"phish"}}',
      '{"warning":{"property":"customizations.vscode.extensions","message":42}}',
      '{"event":"started"}',
      '[1]',
      '{"phase":',
    ])
      expect(parseLifecycleLine(line(json)), json).toBeUndefined();
    expect(parseLifecycleLine('[postCreate] lifecycle {"event":"started","ok":true}')).toBeUndefined();
  });

  it('keeps only whole, bounded numbers (JSON’s 1e999 is Infinity, which a record cannot hold)', () => {
    const parsed = parseLifecycleLine(line('{"phase":"postStartCommand","state":"failed","exitCode":1e999,"durationMs":-5}'));
    expect(parsed).toEqual({ kind: 'command', phase: 'postStartCommand', state: 'failed', tail: [] });
    const warning = lifecycleFailureWarning('postStartCommand', parsed as { tail: string[] }, 'i-1');
    expect(warning.message).toMatch(/^postStartCommand failed with exit code unknown; the lifecycle commands after it were skipped/);
  });
});

describe('cleanLine', () => {
  it('drops terminal escapes and control characters, keeps tabs, cuts at a byte budget', () => {
    expect(cleanLine('\u001b[32mok\u001b[0m\tdone\u0007\u001b]52;c;ZXZpbA==\u0007')).toBe('ok\tdone');
    const cut = cleanLine('界'.repeat(1000));
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_INSTANCE_LOG_LINE_BYTES + 20);
    expect(cut).toMatch(/…\[line cut\]$/);
  });
});
