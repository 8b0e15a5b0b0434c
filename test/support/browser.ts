import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type Page, type Request } from 'playwright-core';
import { waitFor } from './wait.ts';

/**
 * Debian's Chromium, headless, with the flags this closed network needs (Playwright gives it
 * a fresh profile), plus `extraArgs` (e.g. `--host-resolver-rules` to map a test domain to loopback).
 */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/**
 * Goes to `url` (an editor URL; redirects followed) and waits for VS Code's workbench
 * (`.monaco-workbench`) to be visible. What the page met on the way is kept: requests that
 * failed or were still waiting, responses of 400 and above, console errors. A page without a
 * workbench after `timeoutMs` is saved to `screenshot`, said on stderr with all of that, and
 * loaded once more, as a user would reload it (a CI run once saw a page stay blank for 90 s
 * on an idle machine while every other load took 13-17 s; what it met is now printed).
 * @throws Error when the second load has no workbench after `timeoutMs` either, with the same account
 */
export async function openWorkbench(page: Page, url: string, screenshot: string, timeoutMs: number): Promise<void> {
  let met: string[] = [];
  const waiting = new Set<Request>();
  const note = (line: string) => {
    if (met.length < 40) met.push(line.slice(0, 300));
  };
  page.on('request', (r) => waiting.add(r));
  page.on('requestfinished', (r) => waiting.delete(r));
  page.on('requestfailed', (r) => {
    waiting.delete(r);
    note(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText ?? '?'}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) note(`response ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') note(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => note(`page error: ${e.message}`));
  const account = async (err: unknown) => {
    await page.screenshot({ path: screenshot }).catch(() => undefined);
    const title = await page.title().catch(() => '?');
    const text = await page
      .locator('body')
      .innerText({ timeout: 5_000 })
      .then((t) => t.replace(/\s+/g, ' ').slice(0, 300))
      .catch(() => '?');
    const pending = [...waiting].slice(0, 20).map((r) => `still waiting: ${r.method()} ${r.url().slice(0, 200)}`);
    return `no workbench at ${page.url()} (title ${JSON.stringify(title)}, text ${JSON.stringify(text)}; screenshot ${screenshot}): ${(err as Error).message.split('\n')[0]}\n${[...met, ...pending].join('\n')}`;
  };
  for (let load = 1; ; load++) {
    try {
      await page.goto(url, { timeout: timeoutMs });
      await page.waitForSelector('.monaco-workbench', { timeout: timeoutMs });
      return;
    } catch (err) {
      const said = await account(err);
      if (load === 2) throw new Error(said);
      console.warn(`openWorkbench: loading again: ${said}`);
      met = [];
      waiting.clear();
    }
  }
}

/**
 * Opens a terminal in a VS Code workbench: through the command palette, and every other time
 * through its shortcut (on a loaded machine the workbench sometimes drops the palette's first
 * keys). Only a visible xterm counts: each extra terminal adds a hidden one, and the first may be
 * any of them. On failure the page is saved to `screenshot` for whoever reads it.
 * @throws Error after 120 s without a visible terminal
 */
export async function openTerminal(page: Page, screenshot: string): Promise<void> {
  let tries = 0;
  await waitFor(
    'a terminal to open',
    async () => {
      if (await page.locator('.terminal-wrapper .xterm:visible').first().isVisible()) return true;
      if (tries++ % 2 === 1) {
        await page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 } });
        await page.keyboard.press('Control+Backquote');
        return undefined;
      }
      await page.keyboard.press('Escape');
      await page.keyboard.press('F1');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ timeout: 10_000 });
      await input.fill('>Terminal: Create New Terminal');
      await page
        .locator('.quick-input-list [role="option"]', { hasText: 'Terminal: Create New Terminal' })
        .first()
        .waitFor({ state: 'attached', timeout: 10_000 });
      await page.keyboard.press('Enter');
      return undefined;
    },
    120_000,
    2_000,
  ).catch(async (err: unknown) => {
    await page.screenshot({ path: screenshot }).catch(() => undefined);
    throw err;
  });
}

/**
 * Types `line` (and Enter) into the workbench's visible terminal until `done` says it took
 * effect (keys typed while the shell starts may be lost: it types again every 3 s).
 * @throws Error after `timeoutMs` (ms) without `done`
 */
export async function typeInTerminal(page: Page, line: string, done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  await waitFor(
    `the terminal command to take effect: ${line}`,
    async () => {
      if (await done()) return true;
      await page.locator('.terminal-wrapper .xterm:visible').first().click();
      await page.keyboard.type(`${line}\n`, { delay: 10 });
      return undefined;
    },
    timeoutMs,
    3_000,
  );
}

/**
 * In an open workbench: waits for the explorer to list `.sample-post-create` (the remote
 * connection is up), opens a terminal (a screenshot at `screenshot` if none opens) and writes a
 * random marker to /workspace/from-terminal.txt and `shared-<marker>` to /shared/from-first.txt,
 * waiting (up to `timeoutMs` for each step) until `cat` reads the workspace file back. Returns
 * the marker; the caller asserts on the files.
 */
export async function writeFromTerminal(
  page: Page,
  cat: (path: string) => Promise<string | undefined>,
  screenshot: string,
  timeoutMs: number,
): Promise<string> {
  await page.locator('.explorer-folders-view', { hasText: '.sample-post-create' }).waitFor({ timeout: timeoutMs });
  await openTerminal(page, screenshot);
  const marker = randomBytes(4).toString('hex');
  await typeInTerminal(
    page,
    `echo ${marker} > /workspace/from-terminal.txt; echo shared-${marker} > /shared/from-first.txt`,
    async () => (await cat('/workspace/from-terminal.txt'))?.trim() === marker,
    timeoutMs,
  );
  return marker;
}
