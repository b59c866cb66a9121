/**
 * The dashboard panel: curves of one or more runs, the learnability heatmap
 * and "examples to reach". The host owns the data (src/panels/dashboard.ts,
 * DashboardModel): the webview says `ready` with its saved view, gets one
 * snapshot, then deltas built from the workers' events, at most four times a
 * second. One dashboard at a time; opening it for other runs adds them.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { MetricLine, SelectionLine } from '../../core/runs/record';
import { DashboardModel } from '../../panels/dashboard';
import { defaultDashboardView, parseDashboardWebviewMessage, type DashboardHostMessage, type DashboardState, type DashboardView, type DashboardWebviewMessage } from '../../protocol/webview';
import type { WorkerEvent } from '../../protocol/worker';
import { WebviewBoot, loadWebview, replacementPlace, saveExport, webviewOptions, type PanelContext } from './webview';

export class DashboardPanel implements vscode.Disposable {
  static readonly viewType = 'sift.dashboard';
  private static current: DashboardPanel | undefined;

  private readonly model = new DashboardModel();
  /** Run id → folder: worker events and `inspect` name runs by id. */
  private readonly dirs = new Map<string, string>();
  private view: DashboardView;
  /** The webview has its snapshot and shows: only then do deltas go to it (see webviewOptions). */
  private live = false;
  /** The runs the panel opened with, read (a chunk at a time: a long run takes a moment). */
  private readonly loaded: Promise<void>;
  private readonly flushTimer: NodeJS.Timeout;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly boot: WebviewBoot;

  /** Shows the dashboard with these runs added (creating it when there is none). */
  static createOrShow(context: PanelContext, dirs: string[]): DashboardPanel {
    const existing = DashboardPanel.current;
    if (existing) {
      void existing.addRuns(dirs);
      existing.panel.reveal(undefined);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(DashboardPanel.viewType, 'Sift Dashboard', vscode.ViewColumn.Active, webviewOptions(context.extensionUri));
    return new DashboardPanel(panel, context, dirs, undefined, false);
  }

  /** After a reload: the webview's saved state names the runs and the view. */
  static revive(panel: vscode.WebviewPanel, context: PanelContext, state: unknown): DashboardPanel {
    const saved = state as Partial<DashboardState> | undefined;
    const dirs = Array.isArray(saved?.runDirs) ? saved.runDirs.filter((dir): dir is string => typeof dir === 'string') : [];
    return new DashboardPanel(panel, context, dirs, saved?.view, false);
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly context: PanelContext,
    dirs: string[],
    view: DashboardView | undefined,
    replacement: boolean,
  ) {
    DashboardPanel.current = this;
    this.view = view ?? defaultDashboardView;
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'sift.svg');
    this.loaded = this.addRuns(dirs);
    this.boot = new WebviewBoot(panel, 'Dashboard', context.log, () => this.replace(), replacement);
    loadWebview(panel, context.extensionUri, 'dashboard', 'Sift Dashboard');
    this.boot.loading();
    this.disposables.push(
      this.boot,
      panel.onDidDispose(() => this.dispose()),
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.live = false;
      }),
      panel.webview.onDidReceiveMessage((message: unknown) => void this.receive(message)),
      { dispose: context.manager.onEvent((event) => event.type === 'worker' && event.run.run && this.fromWorker(event.run.run.id, event.event)) },
    );
    this.flushTimer = setInterval(() => {
      if (this.live) this.post(...this.model.flush());
    }, 250);
  }

  async addRuns(dirs: readonly string[]): Promise<void> {
    for (const dir of dirs) {
      const resolved = path.resolve(dir);
      if ([...this.dirs.values()].includes(resolved)) continue;
      try {
        const info = await this.model.addRun(resolved);
        this.dirs.set(info.id, resolved);
      } catch (error) {
        this.context.log.warn(`Dashboard: ${resolved}: ${(error as Error).message}`);
        void vscode.window.showWarningMessage(`Sift: the dashboard cannot show ${resolved}: ${(error as Error).message}`);
      }
    }
    this.panel.title = this.dirs.size === 1 ? `Sift: ${[...this.dirs.keys()][0]}` : `Sift Dashboard (${this.dirs.size} runs)`;
  }

  /** A fresh panel in this one's place, with its runs and view: this one's webview never started. */
  private replace(): void {
    const place = replacementPlace(this.panel);
    const dirs = [...this.dirs.values()];
    const view = this.view;
    this.dispose();
    const panel = vscode.window.createWebviewPanel(DashboardPanel.viewType, 'Sift Dashboard', place, webviewOptions(this.context.extensionUri));
    new DashboardPanel(panel, this.context, dirs, view, true);
  }

  dispose(): void {
    if (DashboardPanel.current === this) DashboardPanel.current = undefined;
    clearInterval(this.flushTimer);
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
    this.panel.dispose();
  }

  private fromWorker(runId: string, event: WorkerEvent): void {
    if (!this.model.has(runId)) return;
    switch (event.type) {
      case 'metrics':
        this.model.appendMetric(runId, event.line as MetricLine);
        return;
      case 'selection':
        this.model.appendSelection(runId, event.line as unknown as SelectionLine);
        return;
      case 'status':
        this.model.updateRun(runId, { status: event.state === 'finished' && event.reason === 'stopped' ? 'stopped' : event.state, step: event.step });
        return;
      case 'log':
      case 'error':
        return;
      default: {
        const unreachable: never = event;
        throw new Error(`unknown worker event ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private post(...messages: DashboardHostMessage[]): void {
    for (const message of messages) void this.panel.webview.postMessage(message);
  }

  /** The model's problems since the last look, as notices for the panel. */
  private notices(): DashboardHostMessage[] {
    return this.model.takeProblems().map((message) => {
      this.context.log.warn(`Dashboard: ${message}`);
      return { type: 'notice', payload: { level: 'warning', message } };
    });
  }

  private async receive(raw: unknown): Promise<void> {
    try {
      await this.answer(raw);
    } catch (error) {
      // Reading a run failed mid-way (a damaged or vanished log): say so in the panel; deltas keep coming.
      this.live = true;
      this.context.log.error(`Dashboard: ${(error as Error).stack ?? error}`);
      this.post({ type: 'notice', payload: { level: 'error', message: `Cannot show the runs: ${(error as Error).message}` } });
    }
  }

  private async answer(raw: unknown): Promise<void> {
    const parsed = parseDashboardWebviewMessage(raw);
    if (!parsed.ok) {
      this.context.log.warn(`Dashboard: ignored a malformed message: ${parsed.problem}`);
      return;
    }
    const message: DashboardWebviewMessage = parsed.message;
    switch (message.type) {
      case 'ready':
        this.boot.ready();
        this.view = message.payload.view;
        this.live = false;
        await this.loaded;
        this.post(await this.model.snapshot(this.view), ...this.notices());
        // Deltas only after the snapshot they build on.
        this.live = this.panel.visible;
        return;
      case 'view':
        this.view = message.payload.view;
        this.post(...(await this.model.setView(this.view)), ...this.notices());
        return;
      case 'export-csv': {
        const result = await saveExport(message.payload.suggestedName, Buffer.from(message.payload.csv, 'utf8'), { CSV: ['csv'] }, this.context.workspaceFolders()[0]);
        this.post({ type: 'exported', payload: result });
        return;
      }
      case 'export-png': {
        const result = await saveExport(message.payload.suggestedName, Buffer.from(message.payload.pngBase64, 'base64'), { PNG: ['png'] }, this.context.workspaceFolders()[0]);
        this.post({ type: 'exported', payload: result });
        return;
      }
      case 'inspect': {
        const dir = this.dirs.get(message.payload.run);
        if (dir) await vscode.commands.executeCommand('sift.inspectBatch', { dir, step: message.payload.step });
        return;
      }
      default: {
        const unreachable: never = message;
        this.context.log.warn(`Dashboard: unknown message ${JSON.stringify(unreachable)}`);
      }
    }
  }
}
