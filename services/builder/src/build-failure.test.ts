import { describe, expect, it } from 'vitest';
import { explainBuildFailure, featureIdOf, stepCommandFailed } from './build-failure.ts';

/** The CLI's result line when `docker build` fails (0.89; the command line is ~600 characters in real builds). */
const DOCKER_BUILD_FAILED = {
  message:
    'Command failed: docker build --build-arg _DEV_CONTAINERS_BASE_IMAGE=localhost:5000/library/debian:bookworm --build-arg _DEV_CONTAINERS_IMAGE_USER=root --target dev_containers_target_stage -f /tmp/devcontainercli-root/container-features/0.89.0-1/Dockerfile.extended -t x /tmp/devcontainercli-root/empty-folder',
  description: 'An error occurred building the container.',
};

/** The run of the feature's install (what the CLI 0.89 writes into its BuildKit Dockerfile). */
const FEATURE_RUN =
  'cp -ar /tmp/build-features-src/fail-feat_0 /tmp/dev-container-features  && chmod -R 0755 /tmp/dev-container-features/fail-feat_0  && cd /tmp/dev-container-features/fail-feat_0  && chmod +x ./devcontainer-features-install.sh  && ./devcontainer-features-install.sh  && rm -rf /tmp/dev-container-features/fail-feat_0';

/**
 * The last lines of a real `devcontainer build` (CLI 0.89, buildx on dockerd 20.10's BuildKit)
 * whose local feature's install.sh exits 7; another step's output (vertex #12) interleaves.
 */
const FEATURE_INSTALL_FAILED = [
  '#16 [dev_containers_target_stage 4/5] RUN echo "_CONTAINER_USER_HOME=$(getent passwd root | cut -d: -f6)" >> /tmp/dev-container-features/devcontainer-features.builtin.env',
  '#16 DONE 0.3s',
  `#17 [dev_containers_target_stage 5/5] RUN --mount=type=bind,from=dev_containers_feature_content_source,source=fail-feat_0,target=/tmp/build-features-src/fail-feat_0     ${FEATURE_RUN}`,
  '#17 0.415 ===========================================================================',
  '#17 0.415 Feature       : fail-feat',
  '#17 0.416 Description   :',
  '#17 0.416 Id            : Unknown',
  '#17 0.417 Version       : 1.0.0',
  '#17 0.418 Documentation :',
  '#17 0.418 Options       :',
  '#17 0.419 ===========================================================================',
  '#17 0.427 installing the thing',
  '#12 0.428 another step',
  '#17 0.430 E: Unable to locate package nosuchpkg',
  '#17 0.431 ERROR: Feature "fail-feat" (Unknown) failed to install!',
  `#17 ERROR: executor failed running [/bin/sh -c ${FEATURE_RUN}]: exit code: 7`,
  '------',
  ` > [dev_containers_target_stage 5/5] RUN --mount=type=bind,from=dev_containers_feature_content_source,source=fail-feat_0,target=/tmp/build-features-src/fail-feat_0     ${FEATURE_RUN}:`,
  '0.427 installing the thing',
  '0.430 E: Unable to locate package nosuchpkg',
  '0.431 ERROR: Feature "fail-feat" (Unknown) failed to install!',
  '------',
  `ERROR: failed to build: failed to solve: executor failed running [/bin/sh -c ${FEATURE_RUN}]: exit code: 7`,
];

/** A real run with `ghcr.io/devcontainers/features/node:1` through the egress proxy, on a machine where ghcr.io does not resolve. */
const OCI_UNREACHABLE = [
  'manifest url: https://ghcr.io/v2/devcontainers/features/node/manifests/1',
  '[httpOci] 502 (NoAuth): https://ghcr.io/v2/devcontainers/features/node/manifests/1',
  "Did not fetch target with expected mimetype 'application/vnd.oci.image.manifest.v1+json': DNS lookup of ghcr.io failed (ENOTFOUND)",
  "Could not resolve Feature manifest for 'ghcr.io/devcontainers/features/node:1'.  If necessary, provide registry credentials with 'docker login <registry>'.",
  'Falling back to legacy GitHub Releases mode to acquire Feature.',
  'Github feature.',
  "Could not resolve Feature 'ghcr.io/devcontainers/features/node:1'.  Ensure the Feature is published and accessible from your current environment.",
  "Error: ERR: Feature 'ghcr.io/devcontainers/features/node:1' could not be processed.  You may not have permission to access this Feature, or may not be logged in.  If the issue persists, report this to the Feature author.",
  '    at aj (/node_modules/@devcontainers/cli/dist/spec-node/devContainersSpecCLI.js:287:4753)',
];
const OCI_OUTCOME = {
  message:
    "ERR: Feature 'ghcr.io/devcontainers/features/node:1' could not be processed.  You may not have permission to access this Feature, or may not be logged in.  If the issue persists, report this to the Feature author.",
  description: 'An error occurred building the container.',
};

describe('featureIdOf', () => {
  it.each([
    ['./fail-feat', 'fail-feat'],
    ['./features/fail-feat/', 'fail-feat'],
    ['ghcr.io/devcontainers/features/node:1', 'node'],
    ['localhost:5000/codebay-test/hello:1.2.3', 'hello'],
    [`ghcr.io/devcontainers/features/go@sha256:${'a'.repeat(64)}`, 'go'],
    ['https://example.com/releases/devcontainer-feature-hello.tgz', 'hello'],
    ['https://example.com/whatever.tgz', undefined],
  ])('%s → %s', (ref, id) => expect(featureIdOf(ref)).toBe(id));
});

describe('explainBuildFailure', () => {
  it('names a feature that fails to install as written in devcontainer.json, its step and its last lines — not the docker build command', () => {
    const reason = explainBuildFailure(
      { lines: FEATURE_INSTALL_FAILED, outcome: DOCKER_BUILD_FAILED },
      { features: ['ghcr.io/devcontainers/features/node:1', './fail-feat'], fetches: [] },
    );
    expect(reason).toBe(
      'Feature "./fail-feat" failed to install: its install script exited with code 7 (build step 5 of 5). The whole output is in the build log.\n' +
        'Last lines:\n  installing the thing\n  E: Unable to locate package nosuchpkg',
    );
    expect(reason).not.toContain('docker build');
  });

  it('names a feature pulled in by another one by its id', () => {
    expect(explainBuildFailure({ lines: FEATURE_INSTALL_FAILED, outcome: DOCKER_BUILD_FAILED }, { features: ['./other'], fetches: [] })).toMatch(
      /^Feature "fail-feat" \(a dependency of a feature in devcontainer.json\) failed to install: its install script exited with code 7/,
    );
  });

  it('keeps at most the last 5 lines of the step, each cut to 240 characters', () => {
    const output = Array.from({ length: 9 }, (_, i) => `#17 1.${i}00 line ${i} ${'z'.repeat(i === 8 ? 300 : 0)}`.trim());
    const lines = [...FEATURE_INSTALL_FAILED.slice(0, 11), ...output, ...FEATURE_INSTALL_FAILED.slice(15)];
    const reason = explainBuildFailure({ lines, outcome: DOCKER_BUILD_FAILED }, { features: ['./fail-feat'], fetches: [] })!;
    const quoted = reason.split('\nLast lines:\n')[1]!.split('\n');
    expect(quoted.map((l) => l.slice(0, 8))).toEqual(['  line 4', '  line 5', '  line 6', '  line 7', '  line 8']);
    expect(quoted[4]!.length).toBe(2 + 240);
  });

  it('names an OCI feature whose registry this deployment cannot reach, and says what an operator can do', () => {
    const reason = explainBuildFailure(
      { lines: OCI_UNREACHABLE, outcome: OCI_OUTCOME },
      {
        features: ['ghcr.io/devcontainers/features/node:1'],
        fetches: [
          { kind: 'error', target: 'containers.dev:443', reason: 'DNS lookup of containers.dev failed (ENOTFOUND)' },
          { kind: 'error', target: 'ghcr.io:443', reason: 'DNS lookup of ghcr.io failed (ENOTFOUND)' },
        ],
      },
    );
    expect(reason).toBe(
      'Feature "ghcr.io/devcontainers/features/node:1" could not be fetched: its registry ghcr.io cannot be reached from this deployment (DNS lookup of ghcr.io failed (ENOTFOUND)). ' +
        'Use a copy of the feature from a source this deployment reaches (an operator lists allowed sources in FEATURE_SOURCES), or ask an operator to let the builders reach ghcr.io.',
    );
  });

  it('recognises the CLI’s own words for an unreachable registry when no proxy event names it (getaddrinfo ENOTFOUND)', () => {
    const lines = OCI_UNREACHABLE.map((l) => l.replace('DNS lookup of ghcr.io failed (ENOTFOUND)', 'getaddrinfo ENOTFOUND ghcr.io'));
    expect(explainBuildFailure({ lines, outcome: OCI_OUTCOME }, { features: ['ghcr.io/devcontainers/features/node:1'], fetches: [] })).toMatch(
      /^Feature "ghcr.io\/devcontainers\/features\/node:1" could not be fetched: its registry ghcr.io cannot be reached from this deployment \(getaddrinfo ENOTFOUND ghcr.io\)\. /,
    );
  });

  it('says a registry that does not answer timed out, naming it as written (host and port)', () => {
    const ref = '127.0.0.1:32005/x/y:1';
    const lines = OCI_UNREACHABLE.map((l) => l.replaceAll('ghcr.io/devcontainers/features/node:1', ref));
    const reason = explainBuildFailure(
      { lines, outcome: { message: OCI_OUTCOME.message.replace('ghcr.io/devcontainers/features/node:1', ref) } },
      { features: [ref], fetches: [{ kind: 'timeout', target: '127.0.0.1:32005', reason: 'no bytes either way for 5000 ms' }] },
    );
    expect(reason).toMatch(
      /^Feature "127\.0\.0\.1:32005\/x\/y:1" could not be fetched: its registry 127\.0\.0\.1:32005 cannot be reached from this deployment \(timed out: no bytes either way for 5000 ms\)\. .* let the builders reach 127\.0\.0\.1:32005\.$/,
    );
  });

  it('names a feature whose source the egress proxy refused and points to FEATURE_SOURCES', () => {
    const reason = explainBuildFailure(
      { lines: OCI_UNREACHABLE, outcome: OCI_OUTCOME },
      {
        features: [],
        fetches: [{ kind: 'refused', target: 'ghcr.io:443', reason: 'feature source ghcr.io:443 is refused: it matches no entry of FEATURE_SOURCES' }],
      },
    );
    expect(reason).toBe(
      'Feature "ghcr.io/devcontainers/features/node:1" could not be fetched: this deployment does not allow fetching from ghcr.io (feature source ghcr.io:443 is refused: it matches no entry of FEATURE_SOURCES). An operator allows a feature source by listing it in FEATURE_SOURCES.',
    );
  });

  it('says a registry has no such feature (a real CLI run against a registry without it)', () => {
    const ref = 'localhost:5000/codebay-test/nope:1';
    const lines = [
      `manifest url: http://localhost:5000/v2/codebay-test/nope/manifests/1`,
      '[httpOci] 404 (NoAuth): http://localhost:5000/v2/codebay-test/nope/manifests/1',
      `Did not fetch target with expected mimetype 'application/vnd.oci.image.manifest.v1+json': {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1"}}]}`,
      `Could not resolve Feature manifest for '${ref}'.  If necessary, provide registry credentials with 'docker login <registry>'.`,
      `Could not resolve Feature '${ref}'.  Ensure the Feature is published and accessible from your current environment.`,
      `Error: ERR: Feature '${ref}' could not be processed.  You may not have permission to access this Feature, or may not be logged in.  If the issue persists, report this to the Feature author.`,
    ];
    expect(
      explainBuildFailure(
        { lines, outcome: { message: OCI_OUTCOME.message.replace('ghcr.io/devcontainers/features/node:1', ref) } },
        { features: [ref], fetches: [] },
      ),
    ).toBe(
      `Feature "${ref}" could not be fetched: localhost:5000 has no such feature or version (manifest unknown); check the reference and its tag. The whole output is in the build log.`,
    );
    const denied = lines
      .slice(0, 2)
      .map((l) => l.replace('404', '401'))
      .concat(lines.slice(3));
    expect(explainBuildFailure({ lines: denied, outcome: {} }, { features: [ref], fetches: [] })).toMatch(
      /^Feature "localhost:5000\/codebay-test\/nope:1" could not be fetched: localhost:5000 refused access \(HTTP 401\); the feature may be private/,
    );
  });

  it('names a failing RUN step of the user’s Dockerfile with its stage, exit code and output (a real run)', () => {
    const lines = [
      '#4 [dev 1/2] FROM docker.io/library/debian:bookworm',
      '#4 DONE 0.0s',
      '#5 [dev 2/2] RUN echo broken-x && echo bye >&2 && exit 3',
      '#5 0.209 broken-x',
      '#5 0.211 bye',
      '#5 ERROR: executor failed running [/bin/sh -c echo broken-x && echo bye >&2 && exit 3]: exit code: 3',
      '------',
      ' > [dev 2/2] RUN echo broken-x && echo bye >&2 && exit 3:',
      '0.209 broken-x',
      '0.211 bye',
      '------',
      'ERROR: failed to build: failed to solve: executor failed running [/bin/sh -c echo broken-x && echo bye >&2 && exit 3]: exit code: 3',
      // As the CLI prints it after Docker's line: its own error and stack trace.
      'Error: Command failed: docker buildx build --load -f /tmp/x/Dockerfile -t y /tmp/x',
      '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
    ];
    expect(explainBuildFailure({ lines, outcome: DOCKER_BUILD_FAILED }, { features: [], fetches: [] })).toBe(
      'The Dockerfile step "RUN echo broken-x && echo bye >&2 && exit 3" failed with exit code 3 (build step 2 of 2 of stage "dev"). The whole output is in the build log.\nLast lines:\n  broken-x\n  bye',
    );
  });

  it('reads later BuildKit releases’ words for a failed RUN, and leaves out the CLI’s own stage names', () => {
    const lines = [
      '#7 [dev_container_auto_added_stage_label  2/12] RUN exit 4',
      '#7 ERROR: process "/bin/sh -c exit 4" did not complete successfully: exit code: 4',
    ];
    expect(explainBuildFailure({ lines, outcome: DOCKER_BUILD_FAILED }, { features: [], fetches: [] })).toBe(
      'The Dockerfile step "RUN exit 4" failed with exit code 4 (build step 2 of 12). The whole output is in the build log.',
    );
  });

  it('names a step that failed for another reason than a command, with BuildKit’s reason (a COPY of a missing file)', () => {
    // Step numbers are padded to the width of the count.
    const lines = ['#6 [ 2/10] COPY nope.txt /opt/', '#6 ERROR: failed to calculate checksum of ref abc::def: "/nope.txt": not found'];
    expect(explainBuildFailure({ lines, outcome: DOCKER_BUILD_FAILED }, { features: [], fetches: [] })).toBe(
      'The Dockerfile step "COPY nope.txt /opt/" failed: failed to calculate checksum of ref abc::def: "/nope.txt": not found (build step 2 of 10). The whole output is in the build log.',
    );
  });

  it('names another part of the build that failed, with BuildKit’s reason (a FROM’s image, an ADD <url> fetch)', () => {
    const from = [
      '#3 [internal] load metadata for docker.io/nosuch/image:1',
      '#3 ERROR: pull access denied, repository does not exist or may require authorization',
    ];
    expect(explainBuildFailure({ lines: from, outcome: DOCKER_BUILD_FAILED }, { features: [], fetches: [] })).toBe(
      'The build failed at "[internal] load metadata for docker.io/nosuch/image:1": pull access denied, repository does not exist or may require authorization. The whole output is in the build log.',
    );
    const add = [
      '#5 http://127.0.0.1:8080/health',
      '#5 ERROR: failed to load cache key: Get "http://127.0.0.1:8080/health": dial tcp 127.0.0.1:8080: connect: connection refused',
    ];
    expect(explainBuildFailure({ lines: add, outcome: DOCKER_BUILD_FAILED }, { features: [], fetches: [] })).toMatch(
      /^The build failed at "http:\/\/127\.0\.0\.1:8080\/health": failed to load cache key: .*connection refused\. /,
    );
  });

  it('blames no feature for a step of the user’s Dockerfile that names a feature folder or prints the wrapper’s words', () => {
    const lines = [
      '#5 [2/2] RUN echo /tmp/dev-container-features/node_0/install.sh; exit 3',
      '#5 0.169 ERROR: Feature "ghcr.io/devcontainers/features/node" (node) failed to install!',
      '#5 ERROR: executor failed running [/bin/sh -c echo /tmp/dev-container-features/node_0/install.sh; exit 3]: exit code: 3',
    ];
    for (const features of [[], ['ghcr.io/devcontainers/features/node:1']])
      expect(explainBuildFailure({ lines, outcome: DOCKER_BUILD_FAILED }, { features, fetches: [] })).toMatch(
        /^The Dockerfile step "RUN echo \/tmp\/dev-container-features\/node_0\/install\.sh; exit 3" failed with exit code 3 \(build step 2 of 2\)/,
      );
  });

  it('leaves other failures to the caller', () => {
    const lines = ['Error: spawn docker ENOENT'];
    expect(explainBuildFailure({ lines, outcome: DOCKER_BUILD_FAILED }, { features: [], fetches: [] })).toBeUndefined();
  });
});

describe('stepCommandFailed', () => {
  it('is BuildKit’s line for a command that exited non-zero, in both wordings, never a step’s own output', () => {
    expect(stepCommandFailed(['#5 ERROR: executor failed running [/bin/sh -c exit 3]: exit code: 3'])).toBe(true);
    expect(stepCommandFailed(['#7 ERROR: process "/bin/sh -c exit 4" did not complete successfully: exit code: 4'])).toBe(true);
    expect(stepCommandFailed(['#5 0.12 #5 ERROR: executor failed running [/bin/sh -c exit 3]: exit code: 3'])).toBe(false);
    expect(stepCommandFailed(['#3 ERROR: pull access denied, repository does not exist or may require authorization'])).toBe(false);
  });
});
