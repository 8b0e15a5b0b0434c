import { describe, expect, it } from 'vitest';
import { planBuild } from './build-plan.ts';
import { MAX_NESTING } from './parse.ts';
import { checkBuildPolicy, imageRefProblem, type BuildPolicy } from './policy.ts';
import { parseSourcePolicy } from './sources.ts';

const policy: BuildPolicy = { localEnv: ['TEAM_MIRROR'], platformRegistries: ['localhost:32000', 'localhost:32001'], sources: parseSourcePolicy(['*']) };
const problems = (config: Record<string, unknown>) => {
  try {
    checkBuildPolicy(config, policy);
    return [];
  } catch (err) {
    return ((err as { details: { problems: { property: string }[] } }).details.problems ?? []).map((p) => p.property);
  }
};

describe('checkBuildPolicy', () => {
  it('allows what an ordinary config asks', () => {
    expect(
      problems({ build: { dockerfile: 'Dockerfile', args: { VERSION: '3.12' }, options: ['--pull'] }, containerEnv: { M: '${localEnv:TEAM_MIRROR}' } }),
    ).toEqual([]);
  });

  it('refuses builder variables, docker flags, proxy build args and codebay’s registry, naming each property', () => {
    expect(
      problems({
        image: 'localhost:32000/codebay-devcontainer:x',
        build: { args: { HTTP_PROXY: 'http://p:3128', no_proxy: '*', A: '${env:REDIS_URL}' }, options: ['--network=host'], cacheFrom: '127.0.0.1:32001/x' },
        features: { 'localhost:6380/x/y:1': {} },
      }).sort(),
    ).toEqual([
      'build.args.A',
      'build.args.HTTP_PROXY',
      'build.args.no_proxy',
      'build.cacheFrom',
      'build.options[0]',
      'features["localhost:6380/x/y:1"]',
      'image',
    ]);
  });

  it('walks a deeply nested config without exhausting the stack', () => {
    let deep: unknown = '${localEnv:SECRET}';
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    expect(problems({ image: 'debian:bookworm', customizations: deep })).toHaveLength(1);
  });

  it('refuses an upload nested beyond MAX_NESTING with a 400 before anything recurses over it', () => {
    const depth = 40_000;
    const text = `{"image":"debian:bookworm","customizations":${'{"d":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    expect(() => planBuild({ configText: text }, policy)).toThrow(
      expect.objectContaining({ status: 400, message: expect.stringContaining(`nested more than ${MAX_NESTING} levels`) }),
    );
    expect(() =>
      planBuild({ configText: `{"image":"debian:bookworm","customizations":{"x":${'['.repeat(MAX_NESTING - 2)}${']'.repeat(MAX_NESTING - 2)}}}` }, policy),
    ).not.toThrow();
  });
});

describe('imageRefProblem', () => {
  it.each([
    ['debian:bookworm', false],
    ['ghcr.io/org/image:1', false],
    ['localhost:32000/codebay-devcontainer:x', true],
    ['127.0.0.1:32001/codebay-devcontainer@sha256:' + 'a'.repeat(64), true],
    ['localhost:6380/x:1', true],
    ['169.254.169.254/x:1', true],
  ])('%s refused: %s', (ref, refused) => {
    expect(imageRefProblem(ref, policy) !== undefined).toBe(refused);
  });
});
