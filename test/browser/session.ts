/**
 * One headless Chromium session for a browser suite: the page bundled from
 * ./page.ts served by ./serve.ts, Chromium launched once (beforeAll) and
 * closed (afterAll), one page per query string opened on first use and
 * kept, page errors and console errors collected, and every test failing on
 * a page error (afterEach). Call it inside the suite's describe.
 */
import type {Page} from 'playwright-core';

import {launchChromium} from './chromium';
import type {PageApi} from './page';
import {bundlePage, servePage} from './serve';

/** The page's window, as the suites read it in page.evaluate. */
export type PageWindow = {tfjsNormTest: PageApi};

/** What a suite gets: open(query) (the page at `?...`, once per query) and the log of its pages' errors. */
export interface BrowserSession {
  open: (query: string) => Promise<Page>;
  pageLog: string[];
}

/** Registers the session's hooks in the calling describe; `exe` is Chromium's path. */
export function browserSession(exe: string): BrowserSession {
  let server: {url: string, close: () => Promise<void>};
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const pageLog: string[] = [];
  const pages = new Map<string, Page>();

  async function open(query: string): Promise<Page> {
    const known = pages.get(query);
    if (known) return known;
    const page = await browser.context.newPage();
    page.on('pageerror', (e) => pageLog.push(`[${query}] pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('favicon') && !m.text().includes('404')) {
        pageLog.push(`[${query}] console.error: ${m.text()}`);
      }
    });
    await page.goto(`${server.url}${query}`);
    await page.waitForFunction(() => (window as unknown as PageWindow).tfjsNormTest != null, undefined, {timeout: 60000});
    pages.set(query, page);
    return page;
  }

  beforeAll(async () => {
    server = await servePage(await bundlePage());
    browser = await launchChromium(exe);
  }, 120000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (pageLog.length > 0) process.stderr.write(`\npage log:\n${pageLog.join('\n')}\n`);
  });

  afterEach(() => {
    expect(pageLog.filter((l) => l.includes('pageerror'))).toEqual([]);
  });

  return {open, pageLog};
}
