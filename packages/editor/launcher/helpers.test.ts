import { describe, expect, it } from 'vitest';

import {
  buildEnv,
  editorArgs,
  editorEnv,
  extensionInstallPlan,
  extensionsWarning,
  installFailureReason,
  exitCodeOf,
  findUser,
  isValidUserName,
  isVsixPath,
  mergeSettings,
  normalizeCommand,
  normalizeExtensions,
  parseBakedIndex,
  parseJsonc,
  parseLaunchConfig,
  parsePasswd,
  startPlan,
  donePhases,
  substituteVariables,
} from './helpers.mjs';

describe('parseLaunchConfig', () => {
  it('applies defaults', () => {
    const cfg = parseLaunchConfig(JSON.stringify({ workspaceFolder: '/workspace' }));
    expect(cfg).toMatchObject({
      workspaceFolder: '/workspace',
      host: '0.0.0.0',
      port: 8080,
      extensions: [],
      settings: {},
    });
    expect(cfg.commands).toEqual({
      onCreate: [],
      updateContent: [],
      postCreate: [],
      postStart: [],
      postAttach: [],
    });
    expect(cfg.waitFor).toBe('updateContentCommand');
    expect(cfg.remoteUser).toBeUndefined();
  });

  it('refuses a waitFor the spec does not define', () => {
    expect(() => parseLaunchConfig(JSON.stringify({ waitFor: 'postAttachCommand' }))).toThrow(/waitFor must be one of/);
  });

  it('collects the lifecycle arrays', () => {
    const cfg = parseLaunchConfig(
      JSON.stringify({
        workspaceFolder: '/w',
        onCreateCommands: ['a', ['b', 'c']],
        postStartCommands: [{ x: 'y' }],
      }),
    );
    expect(cfg.commands.onCreate).toEqual(['a', ['b', 'c']]);
    expect(cfg.commands.postStart).toEqual([{ x: 'y' }]);
  });

  it.each([
    [undefined, /not set/],
    ['{', /not valid JSON/],
    ['[]', /object/],
    [JSON.stringify({ workspaceFolder: 'rel' }), /absolute/],
    [JSON.stringify({ port: 0 }), /port/],
    [JSON.stringify({ port: '8080' }), /port/],
    [JSON.stringify({ containerEnv: { A: { b: 1 } } }), /containerEnv\.A/],
    [JSON.stringify({ onCreateCommands: 'echo' }), /must be an array/],
    [JSON.stringify({ postCreateCommands: [[1]] }), /only strings/],
    [JSON.stringify({ extensions: [1] }), /extensions/],
  ])('rejects %s', (text, message) => {
    expect(() => parseLaunchConfig(text)).toThrow(message);
  });
});

describe('normalizeCommand', () => {
  it('runs strings through /bin/sh -c', () => {
    expect(normalizeCommand('echo hi && ls')).toEqual([
      {
        name: undefined,
        argv: ['/bin/sh', '-c', 'echo hi && ls'],
        display: 'echo hi && ls',
      },
    ]);
  });

  it('execs arrays directly', () => {
    expect(normalizeCommand(['echo', 'a b'])).toEqual([{ name: undefined, argv: ['echo', 'a b'], display: "echo 'a b'" }]);
  });

  it('expands objects into named parallel entries and drops empties', () => {
    const r = normalizeCommand({ one: 'a', two: ['b'], empty: '', none: [] });
    expect(r.map((e) => [e.name, e.argv])).toEqual([
      ['one', ['/bin/sh', '-c', 'a']],
      ['two', ['b']],
    ]);
  });

  it('rejects other shapes', () => {
    expect(() => normalizeCommand(42)).toThrow();
    expect(() => normalizeCommand({ a: 1 })).toThrow(/a:|\.a/);
  });
});

describe('substituteVariables', () => {
  const env = { PATH: '/usr/bin', HOME: '/home/x' };
  it('substitutes containerEnv with defaults', () => {
    expect(substituteVariables('${containerEnv:PATH}:/extra', env)).toBe('/usr/bin:/extra');
    expect(substituteVariables('${containerEnv:NOPE}', env)).toBe('');
    expect(substituteVariables('${containerEnv:NOPE:/a:/b}', env)).toBe('/a:/b');
    expect(substituteVariables('${containerEnv:HOME:ignored}', env)).toBe('/home/x');
  });

  it('replaces localEnv (and its alias env) with the default or nothing', () => {
    expect(substituteVariables('a${localEnv:HOME}b', env)).toBe('ab');
    expect(substituteVariables('${localEnv:X:dflt}', env)).toBe('dflt');
    expect(substituteVariables('${env:HOME}', env)).toBe('');
  });

  it('knows the container workspace folder and leaves unknown expressions alone', () => {
    const vars = { workspaceFolder: '/workspaces/proj/' };
    expect(substituteVariables('${containerWorkspaceFolder}/x', env, vars)).toBe('/workspaces/proj//x');
    expect(substituteVariables('${containerWorkspaceFolderBasename}', env, vars)).toBe('proj');
    expect(substituteVariables('${devcontainerId} $HOME ${other}', env, vars)).toBe('${devcontainerId} $HOME ${other}');
  });
});

describe('buildEnv', () => {
  const user = {
    name: 'dev',
    uid: 1000,
    gid: 1000,
    home: '/home/dev',
    shell: '/bin/bash',
  };
  it('layers containerEnv and remoteEnv over the base env and sets the user', () => {
    const env = buildEnv({
      base: {
        PATH: '/usr/bin',
        HOME: '/root',
        USER: 'root',
        CODEBAY_LAUNCH: '{}',
        KEEP: '1',
      },
      containerEnv: { PATH: '${containerEnv:PATH}:/opt/tool/bin', TOKEN: 't' },
      remoteEnv: {
        R: '${containerEnv:TOKEN}-${containerEnv:PATH}',
        KEEP: null,
      },
      user,
    });
    expect(env.PATH).toBe('/usr/bin:/opt/tool/bin');
    expect(env.R).toBe('t-/usr/bin:/opt/tool/bin');
    expect(env.KEEP).toBeUndefined();
    expect(env.CODEBAY_LAUNCH).toBeUndefined();
    expect(env).toMatchObject({
      HOME: '/home/dev',
      USER: 'dev',
      LOGNAME: 'dev',
      SHELL: '/bin/bash',
    });
  });

  it('keeps PATH and provides one when missing', () => {
    expect(buildEnv({ base: { PATH: '/x' } }).PATH).toBe('/x');
    expect(buildEnv({ base: {} }).PATH).toContain('/usr/bin');
  });
});

describe('passwd', () => {
  const text = 'root:x:0:0:root:/root:/bin/bash\n# c\nnode:x:1000:1000::/home/node:/bin/sh\nbroken\n42:x:1001:1001::/home/n:/bin/sh\n';
  it('parses and finds users by name or uid', () => {
    const users = parsePasswd(text);
    expect(users).toHaveLength(3);
    expect(findUser(users, 'node')).toMatchObject({
      uid: 1000,
      gid: 1000,
      home: '/home/node',
    });
    expect(findUser(users, '0')?.name).toBe('root');
    expect(findUser(users, '42')?.uid).toBe(1001);
    expect(findUser(users, 'nobody')).toBeUndefined();
  });

  it('validates names for useradd', () => {
    expect(isValidUserName('vscode')).toBe(true);
    expect(isValidUserName('dev-user.1')).toBe(true);
    expect(isValidUserName('1000')).toBe(false);
    expect(isValidUserName('a b')).toBe(false);
    expect(isValidUserName('x;rm -rf')).toBe(false);
  });
});

describe('settings', () => {
  it('parses JSONC', () => {
    const text = `{
      // comment
      "a": "http://x/*not a comment*/", /* block */
      "b": [1, 2,],
      "c": "quote \\" // still string",
    }`;
    expect(parseJsonc(text)).toEqual({
      a: 'http://x/*not a comment*/',
      b: [1, 2],
      c: 'quote " // still string',
    });
    expect(parseJsonc('  // only a comment\n')).toBeUndefined();
    expect(() => parseJsonc('{ nope }')).toThrow();
  });

  it('merges: existing keys kept, config wins, nested objects merged', () => {
    const existing = {
      keep: 1,
      'editor.fontSize': 12,
      '[python]': { a: 1, b: 1 },
      list: [1],
    };
    const merged = mergeSettings(existing, {
      'editor.fontSize': 16,
      '[python]': { b: 2 },
      list: [2],
    });
    expect(merged).toEqual({
      keep: 1,
      'editor.fontSize': 16,
      '[python]': { a: 1, b: 2 },
      list: [2],
    });
    expect(existing['editor.fontSize']).toBe(12);
    expect(mergeSettings(undefined, { a: 1 })).toEqual({ a: 1 });
  });
});

describe('extensions', () => {
  it('dedupes and honours removals', () => {
    expect(normalizeExtensions(['ms-python.python', 'A.B', 'a.b', ' ', '-ms-python.python', '/x/y.vsix', 'c.d', '/x/y.vsix'])).toEqual([
      'A.B',
      '/x/y.vsix',
      'c.d',
    ]);
  });

  it('recognises .vsix paths', () => {
    expect(isVsixPath('/tmp/x.vsix')).toBe(true);
    expect(isVsixPath('./x.VSIX')).toBe(true);
    expect(isVsixPath('ms-python.python')).toBe(false);
  });
});

describe('baked extensions', () => {
  const index = parseBakedIndex(
    JSON.stringify({
      extensions: [
        { id: 'acme.tool', version: '1.10.0', file: 'acme.tool-1.10.0.vsix' },
        { id: 'acme.other', version: '0.1.0', file: 'acme.other-0.1.0.vsix' },
      ],
      missing: ['Nobody.Here'],
    }),
  );

  it('reads the index; a file that is not a plain .vsix name in the folder, or not JSON, is no index', () => {
    expect(index).toEqual({
      files: new Map([
        ['acme.tool', 'acme.tool-1.10.0.vsix'],
        ['acme.other', 'acme.other-0.1.0.vsix'],
      ]),
      missing: ['nobody.here'],
    });
    expect(parseBakedIndex('{')).toBeNull();
    expect(parseBakedIndex(JSON.stringify({ extensions: [{ id: 'a.b', file: '../etc/passwd.vsix' }] }))).toBeNull();
    expect(parseBakedIndex(JSON.stringify({ extensions: [{ id: 'a.b', file: 'x.tar' }] }))).toBeNull();
  });

  it('installs baked ones from the image, never looks for the others elsewhere; without an index, from the gallery', () => {
    const list = ['ACME.Tool', 'nobody.here', './local.vsix', 'acme.other', '-acme.other'];
    expect(extensionInstallPlan(list, index)).toEqual({
      installs: [
        { ext: 'ACME.Tool', target: '/usr/local/share/codebay/extensions/acme.tool-1.10.0.vsix', from: 'image' },
        { ext: './local.vsix', target: './local.vsix', from: 'file' },
      ],
      notInImage: ['nobody.here'],
    });
    expect(extensionInstallPlan(list, null)).toEqual({
      installs: [
        { ext: 'ACME.Tool', target: 'ACME.Tool', from: 'gallery' },
        { ext: 'nobody.here', target: 'nobody.here', from: 'gallery' },
        { ext: './local.vsix', target: './local.vsix', from: 'file' },
      ],
      notInImage: [],
    });
  });

  it('an install failure says code-server’s error, not its stack trace', () => {
    const out = [
      'Installing extensions...',
      "Error: Unable to install extension 'codebay-test.future' as it is not compatible with VS Code '1.139.1'.",
      '    at qa.install (file:///x/server-main.js:60:15460)',
      'Failed Installing Extensions: file:///usr/local/share/codebay/extensions/codebay-test.future-1.0.0.vsix',
    ];
    expect(installFailureReason(out, 1)).toBe("Unable to install extension 'codebay-test.future' as it is not compatible with VS Code '1.139.1'.");
    expect(installFailureReason(['something else'], 1)).toBe('something else');
    expect(installFailureReason([], 3)).toBe('exit code 3');
  });

  it('one warning names what failed and what the source lacked', () => {
    expect(extensionsWarning([], [])).toBeNull();
    expect(extensionsWarning([{ ext: 'acme.tool', reason: "not compatible with VS Code '1.100.3'" }], ['nobody.here'])).toBe(
      "acme.tool (not compatible with VS Code '1.100.3'): failed to install at start; nobody.here: not in this deployment’s extension source; not installed",
    );
  });
});

describe('editorEnv', () => {
  it('adds the secret as HASHED_PASSWORD and leaves out what would rename the session cookie the gateway adds', () => {
    const env = { PATH: '/usr/bin', CODE_SERVER_COOKIE_SUFFIX: 'mine' };
    expect(editorEnv(env, 'f'.repeat(64))).toEqual({ env: { PATH: '/usr/bin', HASHED_PASSWORD: 'f'.repeat(64) }, dropped: ['CODE_SERVER_COOKIE_SUFFIX'] });
    expect(env).toEqual({ PATH: '/usr/bin', CODE_SERVER_COOKIE_SUFFIX: 'mine' });
  });

  it('without a secret: the environment as it is', () => {
    expect(editorEnv({ PATH: '/usr/bin' })).toEqual({ env: { PATH: '/usr/bin' }, dropped: [] });
  });
});

describe('editorArgs', () => {
  const base = {
    host: '0.0.0.0',
    port: 8080,
    userDataDir: '/h/.local/share/code-server',
    extensionsDir: '/h/.local/share/code-server/extensions',
    workspaceFolder: '/workspace',
  };
  it('builds the code-server command line', () => {
    expect(editorArgs(base)).toEqual([
      '--auth',
      'none',
      '--bind-addr',
      '0.0.0.0:8080',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--user-data-dir',
      '/h/.local/share/code-server',
      '--extensions-dir',
      '/h/.local/share/code-server/extensions',
      '/workspace',
    ]);
  });

  it('guards the editor with its secret when given one', () => {
    expect(editorArgs({ ...base, guarded: true }).slice(0, 2)).toEqual(['--auth', 'password']);
  });

  it('pins the port against $PORT, brackets IPv6 and supports sockets', () => {
    expect(editorArgs({ ...base, env: { PORT: '3000' } })).toEqual(expect.arrayContaining(['--port', '8080']));
    expect(editorArgs({ ...base, host: '::' })).toContain('[::]:8080');
    const sock = editorArgs({
      ...base,
      socket: '/run/cs.sock',
      configFile: '/c.yaml',
    });
    expect(sock).toEqual(expect.arrayContaining(['--socket', '/run/cs.sock', '--config', '/c.yaml']));
    expect(sock).not.toContain('--bind-addr');
  });
});

describe('exitCodeOf', () => {
  it('maps signals shell-style', () => {
    expect(exitCodeOf(3, null)).toBe(3);
    expect(exitCodeOf(null, 'SIGTERM', { SIGTERM: 15 })).toBe(143);
    expect(exitCodeOf(null, null)).toBe(1);
  });
});

describe('startPlan (waitFor)', () => {
  const before = (plan: { phase: string; beforeEditor: boolean }[]) => plan.filter((p) => p.beforeEditor).map((p) => p.phase);
  const after = (plan: { phase: string; beforeEditor: boolean }[]) => plan.filter((p) => !p.beforeEditor).map((p) => p.phase);

  it('waits for updateContent by default: postCreate and postStart run with the editor up', () => {
    const plan = startPlan('updateContentCommand');
    expect(before(plan)).toEqual(['onCreate', 'updateContent']);
    expect(after(plan)).toEqual(['postCreate', 'postStart']);
  });

  it('waits for every phase up to the one named, none for initializeCommand', () => {
    expect(after(startPlan('postStartCommand'))).toEqual([]);
    expect(before(startPlan('onCreateCommand'))).toEqual(['onCreate']);
    expect(before(startPlan('initializeCommand'))).toEqual([]);
  });

  it('leaves out the create phases an earlier start finished', () => {
    const marker = { phases: { onCreate: { ok: true }, updateContent: { ok: true }, postCreate: { ok: false } } };
    expect(donePhases(marker)).toEqual(new Set(['onCreate', 'updateContent']));
    expect(startPlan('updateContentCommand', donePhases(marker)).map((p) => p.phase)).toEqual(['postCreate', 'postStart']);
  });
});
