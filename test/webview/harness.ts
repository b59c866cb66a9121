/**
 * Loads a panel's real bundle in headless Chromium (Debian's, through
 * playwright-core), as VS Code would: the HTML from panelHtml with its CSP and
 * nonce, served from a loopback HTTP server, a theme's --vscode-* variables,
 * and a stub `acquireVsCodeApi` that hands every posted message to the test,
 * which plays the host. Also used by the webview benchmark.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { makeNonce, panelHtml } from '../../src/panels/html';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const resultsDir = path.join(repoRoot, 'test-results');
export const chromiumPath = process.env.SIFT_CHROMIUM ?? '/usr/bin/chromium';

export type Theme = 'light' | 'dark' | 'high-contrast';
export type Panel = 'dashboard' | 'inspector';

const bodyClass: Record<Theme, string> = { light: 'vscode-light', dark: 'vscode-dark', 'high-contrast': 'vscode-high-contrast' };
const types: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };

/** A loopback server for dist/webview and the theme fixtures, and the panel pages. */
export async function startServer(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/favicon.ico') {
      response.writeHead(204);
      response.end();
      return;
    }
    const page = url.pathname.match(/^\/panel\/(dashboard|inspector)$/);
    if (page) {
      const origin = `http://${request.headers.host}`;
      const theme = (url.searchParams.get('theme') ?? 'dark') as Theme;
      // ?missing-script=1: the panel's script does not arrive (as when a webview's files fail to load).
      const missing = url.searchParams.get('missing-script') === '1';
      const html = panelHtml({
        scriptUri: `${origin}/dist/webview/${missing ? 'no-such-bundle' : page[1]}.js`,
        bootTimeoutMs: url.searchParams.has('boot-ms') ? Number(url.searchParams.get('boot-ms')) : undefined,
        styleUri: `${origin}/dist/webview/${page[1]}.css`,
        cspSource: origin,
        nonce: makeNonce(),
        title: page[1],
      })
        // What VS Code adds around a webview's own HTML: the theme's variables and body class.
        .replace('</head>', `<link rel="stylesheet" href="${origin}/test/webview/themes/${theme}.css">\n</head>`)
        .replace('<body>', `<body class="${bodyClass[theme]}" data-vscode-theme-kind="${bodyClass[theme]}">`);
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(html);
      return;
    }
    const allowed = url.pathname.startsWith('/dist/webview/') || url.pathname.startsWith('/test/webview/themes/');
    const file = path.join(repoRoot, path.normalize(url.pathname));
    if (!allowed || !file.startsWith(repoRoot) || !fs.existsSync(file)) {
      response.writeHead(404);
      response.end();
      return;
    }
    response.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export interface Browser {
  context: BrowserContext;
  close: () => Promise<void>;
}

/** Chromium with a fresh profile, offline flags, nothing from outside. */
export async function launch(): Promise<Browser> {
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'webview', 'dashboard.js'))) throw new Error('dist/webview is missing: run `npm run build` first.');
  if (!fs.existsSync(chromiumPath)) throw new Error(`No Chromium at ${chromiumPath}: install it (apt-get install -y chromium) or set SIFT_CHROMIUM.`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface PanelPage {
  page: Page;
  /** Every message the webview posted, in order. */
  posted: unknown[];
  /** Dialogs (alert, confirm…) the page opened: there must be none. */
  dialogs: string[];
  /** Console errors and uncaught exceptions. */
  errors: string[];
  /** Host → webview. */
  send: (message: unknown) => Promise<void>;
  /** Waits for the webview to post a message of this type (after the `skip` first ones). */
  waitForPost: (type: string, skip?: number) => Promise<{ type: string; payload: never }>;
  /** CSP violations the page reported. */
  violations: () => Promise<string[]>;
}

/**
 * Opens a panel page; `onPost` plays the host for each posted message (it may
 * call `send`). `savedState` is what vscode.getState() returns (a reload).
 */
export async function openPanel(browser: Browser, origin: string, panel: Panel, theme: Theme, onPost: (message: { type: string; payload: never }, panelPage: PanelPage) => void | Promise<void>, savedState?: unknown): Promise<PanelPage> {
  const page = await browser.context.newPage();
  const posted: unknown[] = [];
  const dialogs: string[] = [];
  const errors: string[] = [];
  const waiters: { type: string; skip: number; resolve: (m: never) => void }[] = [];
  const panelPage: PanelPage = {
    page,
    posted,
    dialogs,
    errors,
    send: async (message) => {
      await page.evaluate((m) => window.postMessage(m, '*'), message);
    },
    waitForPost: (type, skip = 0) =>
      new Promise((resolve) => {
        const seen = posted.filter((m) => (m as { type: string }).type === type);
        if (seen.length > skip) resolve(seen[skip] as never);
        else waiters.push({ type, skip, resolve });
      }),
    violations: () => page.evaluate(() => (window as unknown as { __siftViolations: string[] }).__siftViolations),
  };
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  await page.exposeFunction('__siftPost', async (message: { type: string; payload: never }) => {
    posted.push(message);
    const count = posted.filter((m) => (m as { type: string }).type === message.type).length;
    for (const waiter of [...waiters]) {
      if (waiter.type === message.type && count > waiter.skip) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message as never);
      }
    }
    await onPost(message, panelPage);
  });
  // A string, not a function: the test runner's transpiler would add helpers the page lacks.
  await page.addInitScript(`(() => {
    window.__siftViolations = [];
    window.__siftFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    document.addEventListener('securitypolicyviolation', (event) => window.__siftViolations.push(event.violatedDirective + ' ' + event.blockedURI));
    let saved = ${JSON.stringify(savedState ?? null)} ?? undefined;
    window.acquireVsCodeApi = () => ({
      postMessage: (message) => window.__siftPost(JSON.parse(JSON.stringify(message))),
      getState: () => saved,
      setState: (next) => { saved = next; window.__siftState = next; },
    });
  })();`);
  await page.goto(`${origin}/panel/${panel}?theme=${theme}`);
  return panelPage;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** How much of a canvas is not the background: a drawn chart is well above zero. */
export async function canvasInk(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (element) => {
    const canvas = element as HTMLCanvasElement;
    const ctx = canvas.getContext('2d');
    if (!ctx || canvas.width === 0 || canvas.height === 0) return 0;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const [r0, g0, b0, a0] = [data[0], data[1], data[2], data[3]];
    let differing = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] !== r0 || data[i + 1] !== g0 || data[i + 2] !== b0 || data[i + 3] !== a0) differing++;
    return differing / (data.length / 4);
  });
}
