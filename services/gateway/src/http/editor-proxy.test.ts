import { describe, expect, it } from 'vitest';
import { matchEditorPath } from './editor-proxy.ts';

describe('matchEditorPath', () => {
  it.each([
    ['/instances/alice-1a2b3c4d/', 'alice-1a2b3c4d', '/'],
    ['/instances/alice-1a2b3c4d/static/out/vs/workbench.js', 'alice-1a2b3c4d', '/static/out/vs/workbench.js'],
    ['/instances/a/x', 'a', '/x'],
    ['/instances/abc/a%20b', 'abc', '/a%20b'],
    ['/instances/abc//double', 'abc', '//double'],
    ['/instances/abc/build-logsx', 'abc', '/build-logsx'],
    ['/instances/abc/stable-123/build-logs', 'abc', '/stable-123/build-logs'],
    ['/instances/abc/build-logs/more', 'abc', '/build-logs/more'],
  ])('%s is editor path %s → %s', (url, id, upstreamUrl) => {
    expect(matchEditorPath(url)).toEqual({ id, upstreamUrl });
  });

  it('keeps the query string on the upstream URL', () => {
    expect(matchEditorPath('/instances/abc/?folder=/home/vscode/workspace')).toEqual({ id: 'abc', upstreamUrl: '/?folder=/home/vscode/workspace' });
    expect(matchEditorPath('/instances/abc/?tkn=secret&x=1')).toEqual({ id: 'abc', upstreamUrl: '/?tkn=secret&x=1' });
    expect(matchEditorPath('/instances/abc/x?a=1?b=2')).toEqual({ id: 'abc', upstreamUrl: '/x?a=1?b=2' });
    expect(matchEditorPath('/instances/abc/x?')).toEqual({ id: 'abc', upstreamUrl: '/x?' });
  });

  it.each([
    '/instances/abc/build-logs',
    '/instances/abc/build-logs?follow=1',
    '/instances/abc/build-logs?after=/instances/abc/x',
    '/instances/abc/build-status',
    '/instances/abc/build-status?x=1',
  ])('leaves the API path %s to the API', (url) => {
    expect(matchEditorPath(url)).toBeUndefined();
  });

  it.each([
    ['/instances/abc', 'the instance resource itself (no slash)'],
    ['/instances/abc?tkn=x', 'the seed URL form (redirected elsewhere)'],
    ['/instances/', 'no id'],
    ['/instances', 'the collection'],
    ['/instances/simple', 'a create route'],
    ['/api/instances/abc/', 'anything under /api'],
    ['/instances/ABC/', 'an upper-case id'],
    ['/instances/-abc/', 'an id with a leading hyphen'],
    ['/instances/abc-/', 'an id with a trailing hyphen'],
    ['/instances/a_b/', 'an id with an underscore'],
    ['/health', 'other routes'],
    ['/x/instances/abc/', 'a prefix before /instances'],
    ['/instances?x=/instances/abc/', 'a query that looks like an editor path'],
  ])('%s is not an editor path (%s)', (url) => {
    expect(matchEditorPath(url)).toBeUndefined();
  });
});
