/**
 * A real VS Code for the end-to-end tests: code-server (VS Code 1.100.3,
 * installed into .vscode-test/ by scripts/e2e/install-code-server.sh) with
 * this extension loaded from the working tree as an extension under
 * development, driven through Debian's chromium by playwright-core the way a
 * person would: the command palette, quick picks, the Runs view, the status
 * bar, notifications. Screenshots go to test-results/e2e/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const resultsDir = path.join(repoRoot, 'test-results', 'e2e');
const codeServer = path.join(repoRoot, '.vscode-test', 'code-server', 'node_modules', '.bin', 'code-server');

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A JSON file the editor writes, once it is there and complete: a file can
 * exist while its write is still under way, and then it parses as
 * "Unexpected end of JSON input". `ready` may ask more of it (a saved output).
 */
export async function readJsonWhenWritten<T = unknown>(file: string, timeoutMs: number, ready: (json: T) => boolean = () => true): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as T;
      if (ready(json)) return json;
      last = 'its content is not the expected one yet';
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${file} was not written within ${timeoutMs / 1000} s: ${last}`);
    await sleep(200);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
    server.on('error', reject);
  });
}

async function waitForHttp(url: string, timeoutMs: number, server: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`code-server exited with ${server.exitCode}:\n${log()}`);
    try {
      const response = await fetch(url);
      if (response.status < 500) return;
    } catch {
      // Not listening yet.
    }
    await sleep(250);
  }
  throw new Error(`code-server did not answer at ${url} within ${timeoutMs} ms:\n${log()}`);
}

export interface WorkbenchOptions {
  workspace: string;
  /** Run with workspace trust on (the untrusted scenario); default off: the folder is trusted. */
  workspaceTrust?: boolean;
  /** User settings.json contents, on top of the quiet defaults below. */
  settings?: Record<string, unknown>;
  /** Where the extension host appends its event-loop delay, a JSON line every 2 s (SIFT_HOST_DELAY_LOG). */
  delayLog?: string;
}

export class Workbench {
  /**
   * What the browser said, from every frame (the workbench and each webview):
   * console messages, uncaught errors and failed requests, newest last. A
   * panel that stays blank says why here; it is written to
   * test-results/e2e/browser-<n>.log when the workbench closes.
   */
  private readonly browserLog: string[] = [];

  private constructor(
    readonly page: Page,
    private readonly browser: Browser,
    private readonly server: ChildProcess,
    private readonly scratch: string,
    readonly serverLog: () => string,
  ) {
    const started = Date.now();
    const note = (line: string): void => {
      this.browserLog.push(`${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s ${line}`);
      if (this.browserLog.length > 4000) this.browserLog.splice(0, 1000);
    };
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning' || /webview|sift/i.test(message.text())) note(`console.${message.type()} [${message.location().url.slice(0, 120)}] ${message.text().slice(0, 500)}`);
    });
    page.on('pageerror', (error) => note(`pageerror ${error.stack ?? error.message}`));
    page.on('requestfailed', (request) => note(`requestfailed ${request.url().slice(0, 200)}: ${request.failure()?.errorText ?? ''}`));
    page.on('frameattached', (frame) => note(`frame attached ${frame.url().slice(0, 120)}`));
    // The panels' own files (dist/webview/*), which a webview's service worker fetches through the workbench.
    const ours = (url: string): boolean => /dist\/webview\//.test(url);
    page.on('request', (request) => ours(request.url()) && note(`request ${request.url().replace(/^.*dist\/webview\//, '')}`));
    page.on('response', (response) => ours(response.url()) && note(`response ${response.status()} ${response.url().replace(/^.*dist\/webview\//, '')}${response.fromServiceWorker() ? ' (service worker)' : ''}`));
  }

  /** The browser's last `count` log lines (see browserLog). */
  browserLogTail(count = 30): string {
    return this.browserLog.slice(-count).join('\n');
  }

  static async open(options: WorkbenchOptions): Promise<Workbench> {
    if (!fs.existsSync(codeServer)) throw new Error(`${codeServer} is missing: run bash scripts/e2e/install-code-server.sh (npm run test:e2e does).`);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-e2e-'));
    const userData = path.join(scratch, 'user-data');
    fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
    fs.writeFileSync(
      path.join(userData, 'User', 'settings.json'),
      JSON.stringify({
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'update.mode': 'none',
        'security.workspace.trust.startupPrompt': 'always',
        'workbench.colorTheme': 'Default Dark Modern',
        ...options.settings,
      }),
    );
    const config = path.join(scratch, 'config.yaml');
    fs.writeFileSync(config, 'auth: none\n');
    const port = await freePort();
    const args = [
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--config', config,
      '--user-data-dir', userData,
      '--extensions-dir', path.join(scratch, 'extensions'),
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-getting-started-override',
      ...(options.workspaceTrust ? [] : ['--disable-workspace-trust']),
      options.workspace,
    ];
    const env = { ...process.env };
    delete env.PORT;
    delete env.VSCODE_IPC_HOOK_CLI;
    if (options.delayLog) env.SIFT_HOST_DELAY_LOG = options.delayLog;
    // code-server keeps state under the XDG folders too: keep it in the scratch folder, not the user's home.
    env.XDG_CONFIG_HOME = path.join(scratch, 'config');
    env.XDG_DATA_HOME = path.join(scratch, 'data');
    let output = '';
    const server = spawn(codeServer, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    server.stdout?.setEncoding('utf8').on('data', (text: string) => (output = (output + text).slice(-20_000)));
    server.stderr?.setEncoding('utf8').on('data', (text: string) => (output = (output + text).slice(-20_000)));
    const serverLog = (): string => output;
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/healthz`, 60_000, server, serverLog);

    const browser = await chromium.launch({
      executablePath: process.env.SIFT_E2E_CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      // Chromium holds back low-priority work (service-worker updates among it) until a newly started
      // browser's page has been idle for a second, or a minute has passed. Each webview registers a
      // service worker, one at a time, so with runs training fast a webview opened in the suite's first
      // minute could wait that minute, blank (src/extension/panels/webview.ts, WebviewBoot). A user's
      // browser has long since started; this one starts with each test file.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--enable-features=ImprovedStartupBestEffortDelay:StartupDelayVisibleTabTimeout/0s',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${repoRoot}`]]);
    await page.goto(`${base}/?folder=${encodeURIComponent(options.workspace)}&payload=${encodeURIComponent(payload)}`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await page.locator('.part.statusbar').waitFor({ timeout: 60_000 });
    return new Workbench(page, browser, server, scratch, serverLog);
  }

  async close(): Promise<void> {
    fs.mkdirSync(resultsDir, { recursive: true });
    let n = 1;
    while (fs.existsSync(path.join(resultsDir, `browser-${n}.log`))) n++;
    fs.writeFileSync(path.join(resultsDir, `browser-${n}.log`), `${this.browserLog.join('\n')}\n`);
    await this.browser.close().catch(() => {});
    if (this.server.pid !== undefined && this.server.exitCode === null) {
      // code-server runs the extension host (and its workers) as children: end its whole group.
      try {
        process.kill(-this.server.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
      await Promise.race([new Promise((resolve) => this.server.once('exit', resolve)), sleep(5000)]);
      try {
        process.kill(-this.server.pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    if (process.env.SIFT_E2E_KEEP) process.stderr.write(`kept ${this.scratch}\n`);
    else fs.rmSync(this.scratch, { recursive: true, force: true });
  }

  async screenshot(name: string): Promise<string> {
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** Runs a command from the palette by its title ("Sift: Start Training Run…"); reopens the palette until the command is registered. */
  async runCommand(title: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await this.page.keyboard.press('Escape');
      await this.page.keyboard.press('F1');
      const input = this.quickInput.locator('input');
      await input.waitFor({ timeout: 10_000 });
      await input.fill(`>${title}`);
      const row = this.quickInput.locator('.monaco-list-row', { hasText: title }).first();
      try {
        await row.waitFor({ timeout: 3000 });
        const label = (await row.getAttribute('aria-label')) ?? '';
        if (label.startsWith(title) || label.includes(title)) {
          await row.click();
          return;
        }
      } catch {
        // Not registered yet: the palette does not refresh while open.
      }
      await sleep(1000);
    }
    throw new Error(`The command "${title}" did not appear in the palette within ${timeoutMs} ms.`);
  }

  get quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  /**
   * Picks the quick pick row whose label contains `label`. Only a visible row:
   * the widget keeps rows of earlier picks in its DOM, hidden (once 43 of
   * them matched, and the first stayed hidden until the wait ran out).
   */
  async pick(label: string | RegExp, timeoutMs = 20_000): Promise<void> {
    const row = this.quickInput.locator('.monaco-list-row', { hasText: label }).filter({ visible: true }).first();
    try {
      await row.waitFor({ timeout: timeoutMs });
      await row.click({ timeout: 5000 });
    } catch (error) {
      const shot = await this.screenshot(`failed-pick-${String(label).replace(/\W+/g, '-')}`);
      throw new Error(`Could not pick "${label}" (see ${shot}): ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Runs a command and picks `label` in the quick pick it opens. A panel that
   * has just opened can take the focus and close the pick before it is
   * clicked (seen once in CI); then the command runs once more.
   */
  async runCommandAndPick(command: string, title: RegExp, label: string | RegExp): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.runCommand(command);
      await this.waitForQuickInput(title);
      try {
        return await this.pick(label, 10_000);
      } catch (error) {
        if (attempt === 2) throw error;
        await this.page.keyboard.press('Escape');
      }
    }
  }

  /** Types into an open input box (replacing its value) and accepts it. */
  async answer(text: string): Promise<void> {
    const input = this.quickInput.locator('input');
    await input.waitFor({ timeout: 20_000 });
    await input.fill(text);
    await sleep(300);
    await input.press('Enter');
  }

  /** Waits for the quick input (pick or input box) whose title matches. */
  async waitForQuickInput(title: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    while (Date.now() < deadline) {
      text = (await this.quickInput.locator('.quick-input-title').textContent().catch(() => '')) ?? '';
      if (title.test(text)) return text;
      await sleep(200);
    }
    throw new Error(`No quick input titled ${title} within ${timeoutMs} ms; the last title was "${text}".`);
  }

  /** Opens the Sift view container in the activity bar. */
  async showRunsView(): Promise<void> {
    await this.page.locator('.activitybar .action-item a[aria-label^="Sift"]').first().click();
    await this.page.locator('.part.sidebar .title-label', { hasText: /Sift/i }).first().waitFor({ timeout: 20_000 });
  }

  /** The Runs view's rows: each one's accessible label ("<id>, <status>, <description>") and indentation level. */
  async runRows(): Promise<{ label: string; level: number }[]> {
    const rows = this.page.locator('.part.sidebar .pane-body .monaco-list-row');
    const count = await rows.count();
    const out: { label: string; level: number }[] = [];
    for (let i = 0; i < count; i++) {
      const row = rows.nth(i);
      out.push({ label: (await row.getAttribute('aria-label')) ?? '', level: Number((await row.getAttribute('aria-level')) ?? '1') });
    }
    return out;
  }

  runRow(text: string | RegExp): Locator {
    return this.page.locator('.part.sidebar .pane-body .monaco-list-row', { hasText: text }).first();
  }

  /** Waits until `predicate` holds for the Runs view's rows; returns them. */
  async waitForRows(predicate: (rows: { label: string; level: number }[]) => boolean, what: string, timeoutMs = 90_000): Promise<{ label: string; level: number }[]> {
    const deadline = Date.now() + timeoutMs;
    let rows: { label: string; level: number }[] = [];
    while (Date.now() < deadline) {
      rows = await this.runRows();
      if (predicate(rows)) return rows;
      await sleep(300);
    }
    const shot = await this.screenshot(`failed-${what.replace(/\W+/g, '-')}`);
    throw new Error(`Runs view: ${what} did not happen within ${timeoutMs} ms (see ${shot}). Rows: ${JSON.stringify(rows)}`);
  }

  /** Right-clicks a run in the Runs view and chooses a context menu entry. */
  async contextMenu(rowText: string | RegExp, entry: string): Promise<void> {
    const item = this.page.locator('.context-view .action-item', { hasText: entry }).first();
    // A row that redraws under the pointer (a training run's row changes every few steps) can swallow the
    // right-click, or close the menu before the entry is clicked: open the menu again.
    for (let attempt = 1; ; attempt++) {
      await this.runRow(rowText).click({ button: 'right' });
      try {
        await item.waitFor({ timeout: 5_000 });
        await item.click({ timeout: 5_000 });
        break;
      } catch (err) {
        if (attempt >= 4) throw err;
        await this.page.keyboard.press('Escape');
      }
    }
    // A row that redraws under the pointer can swallow the click: the entry stays focused, and Enter chooses it.
    for (let attempt = 0; attempt < 3 && (await item.count()) > 0; attempt++) {
      await sleep(500);
      if ((await item.count()) === 0) break;
      await item.hover().catch(() => {});
      await this.page.keyboard.press('Enter');
    }
    await item.waitFor({ state: 'detached', timeout: 5000 });
  }

  /** The text of the Sift status bar item ('' when hidden). */
  async statusBarText(): Promise<string> {
    const item = this.page.locator('.part.statusbar .statusbar-item', { hasText: /Sift/ }).first();
    if ((await item.count()) === 0) return '';
    return ((await item.textContent()) ?? '').trim();
  }

  async waitForStatusBar(pattern: RegExp, timeoutMs = 90_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    while (Date.now() < deadline) {
      text = await this.statusBarText();
      if (pattern.test(text)) return text;
      await sleep(250);
    }
    throw new Error(`The status bar did not show ${pattern} within ${timeoutMs} ms; it shows "${text}".`);
  }

  /** Text of every notification toast showing now. */
  async notifications(): Promise<string[]> {
    const toasts = this.page.locator('.notifications-toasts .notification-toast');
    const count = await toasts.count();
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(((await toasts.nth(i).textContent()) ?? '').trim());
    return out;
  }

  async waitForNotification(pattern: RegExp, timeoutMs = 60_000): Promise<Locator> {
    const toast = this.page.locator('.notifications-toasts .notification-toast', { hasText: pattern }).first();
    await toast.waitFor({ timeout: timeoutMs });
    return toast;
  }

  /** Clicks a button of a modal dialog. */
  async dialogButton(label: string): Promise<void> {
    const button = this.page.locator('.monaco-dialog-box .monaco-button', { hasText: label }).first();
    await button.waitFor({ timeout: 20_000 });
    await button.click();
  }

  /**
   * The text of a webview the editor shows (a Markdown preview, a panel): two
   * iframes deep. Every webview frame is read: with two panels open side by
   * side (a dashboard and an inspector) there are two, and a single locator
   * over both fails Playwright's strict mode on every read, which looked like
   * a blank panel.
   */
  async webviewText(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    const frames = this.page.locator('iframe.webview.ready');
    const deadline = Date.now() + timeoutMs;
    let texts: string[] = [];
    while (Date.now() < deadline) {
      texts = [];
      const count = await frames.count();
      for (let i = 0; i < count; i++) {
        const body = frames.nth(i).contentFrame().locator('iframe#active-frame').contentFrame().locator('body');
        texts.push(((await body.textContent({ timeout: 2000 }).catch(() => '')) ?? '').trim());
      }
      const match = texts.find((text) => pattern.test(text));
      if (match !== undefined) return match;
      await sleep(300);
    }
    const shot = await this.screenshot(`failed-webview-${pattern.source.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`);
    throw new Error(`No webview showed ${pattern} within ${timeoutMs} ms; the ${texts.length} webview(s) last showed: ${texts.map((t) => JSON.stringify(t.slice(0, 150))).join(', ') || 'none'} (screenshot ${shot}); the browser's last words:\n${this.browserLogTail()}`);
  }

  /** The `src` of every image in every webview the editor shows (images without one left out). */
  async webviewImageSources(): Promise<string[]> {
    const frames = this.page.locator('iframe.webview.ready');
    const sources: string[] = [];
    for (let i = 0; i < (await frames.count()); i++) {
      const images = frames.nth(i).contentFrame().locator('iframe#active-frame').contentFrame().locator('img');
      for (let j = 0; j < (await images.count()); j++) {
        const source = await images.nth(j).getAttribute('src', { timeout: 2000 }).catch(() => null);
        if (source) sources.push(source);
      }
    }
    return sources;
  }

  async clearNotifications(): Promise<void> {
    await this.runCommand('Notifications: Clear All Notifications').catch(() => {});
  }
}
