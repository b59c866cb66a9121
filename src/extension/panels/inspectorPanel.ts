/**
 * The batch inspector panel: the image-caption pairs a step trained on, with
 * their scores (src/panels/inspector.ts, InspectorModel). The webview says
 * `ready` with its saved view, gets the step and a snapshot, then the new
 * steps as the run's worker writes them. Images come from a ThumbnailService
 * shared by every inspector of the window. One inspector at a time: opening
 * it on another run reloads its webview for that run.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SelectionLine } from '../../core/runs/record';
import { InspectorModel } from '../../panels/inspector';
import { ThumbnailService } from '../../panels/thumbnails';
import { parseInspectorWebviewMessage, type InspectorHostMessage, type InspectorState } from '../../protocol/webview';
import type { WorkerEvent } from '../../protocol/worker';
import { Coalescer } from '../coalesce';
import { WebviewBoot, loadWebview, replacementPlace, webviewOptions, type PanelContext } from './webview';

/** How often the panel hears of a training run's new steps at most. */
const deltaIntervalMs = 250;

let thumbnails: ThumbnailService | undefined;

export class InspectorPanel implements vscode.Disposable {
  static readonly viewType = 'sift.inspector';
  private static current: InspectorPanel | undefined;

  private model: InspectorModel | undefined;
  /** The step to show first (from the dashboard's heatmap), taken up at `ready`. */
  private requestedStep: number | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly boot: WebviewBoot;
  /**
   * Deltas from the worker waiting to be posted, the newest of each kind: a
   * run on the native matMul reports dozens of steps a second. Each delta
   * carries the whole state of its kind, so the newest stands for the rest.
   */
  private readonly pendingDeltas = new Map<InspectorHostMessage['type'], InspectorHostMessage>();
  private readonly deltas = new Coalescer(() => {
    const messages = [...this.pendingDeltas.values()];
    this.pendingDeltas.clear();
    if (this.live) this.post(...messages);
  }, deltaIntervalMs);
  /** The webview has its snapshot and shows: only then do deltas go to it (see webviewOptions). */
  private live = false;

  static createOrShow(context: PanelContext, dir: string, step?: number): InspectorPanel {
    const existing = InspectorPanel.current;
    if (existing) {
      existing.open(dir, step);
      existing.panel.reveal(undefined);
      return existing;
    }
    return InspectorPanel.create(context, dir, step, vscode.ViewColumn.Active, false);
  }

  private static create(context: PanelContext, dir: string, step: number | undefined, place: vscode.ViewColumn | { viewColumn: vscode.ViewColumn; preserveFocus: boolean }, replacement: boolean): InspectorPanel {
    const panel = vscode.window.createWebviewPanel(InspectorPanel.viewType, 'Sift Batch Inspector', place, webviewOptions(context.extensionUri));
    const inspector = new InspectorPanel(panel, context, replacement);
    inspector.open(dir, step);
    return inspector;
  }

  static revive(panel: vscode.WebviewPanel, context: PanelContext, state: unknown): InspectorPanel {
    const inspector = new InspectorPanel(panel, context, false);
    const dir = (state as Partial<InspectorState> | undefined)?.runDir;
    if (typeof dir === 'string') inspector.open(dir);
    else panel.dispose();
    return inspector;
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly context: PanelContext,
    replacement: boolean,
  ) {
    InspectorPanel.current = this;
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'sift.svg');
    thumbnails ??= new ThumbnailService();
    this.boot = new WebviewBoot(panel, 'Batch inspector', context.log, () => this.replace(), replacement);
    this.disposables.push(
      this.boot,
      panel.onDidDispose(() => this.dispose()),
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.live = false;
      }),
      panel.webview.onDidReceiveMessage((message: unknown) => void this.receive(message)),
      { dispose: context.manager.onEvent((event) => event.type === 'worker' && event.run.run && void this.fromWorker(event.run.run.dir, event.event)) },
    );
  }

  /** Shows the run in `dir` (at `step`, else the latest); the webview reloads and asks for it. */
  open(dir: string, step?: number): void {
    try {
      this.model = new InspectorModel(path.resolve(dir), { thumbnails: thumbnails!, baseDirs: this.context.workspaceFolders() });
    } catch (error) {
      void vscode.window.showErrorMessage(`Sift: cannot inspect ${dir}: ${(error as Error).message}`);
      return;
    }
    this.requestedStep = step;
    this.panel.title = `Sift Batches: ${this.model.runId}`;
    this.live = false;
    this.load();
    this.boot.loading();
  }

  private load(): void {
    loadWebview(this.panel, this.context.extensionUri, 'inspector', this.panel.title);
  }

  /** A fresh panel in this one's place, on the same run and step: this one's webview never started. */
  private replace(): void {
    const place = replacementPlace(this.panel);
    const dir = this.model?.dir;
    const step = this.requestedStep;
    this.dispose();
    if (dir) InspectorPanel.create(this.context, dir, step, place, true);
  }

  dispose(): void {
    this.deltas.dispose();
    if (InspectorPanel.current === this) InspectorPanel.current = undefined;
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
    this.panel.dispose();
  }

  private async fromWorker(dir: string, event: WorkerEvent): Promise<void> {
    const model = this.model;
    if (!model || model.dir !== dir) return;
    try {
      if (event.type === 'selection') {
        for (const message of await model.appendSelection(event.line as unknown as SelectionLine)) this.pendingDeltas.set(message.type, message);
        this.deltas.request();
      } else if (event.type === 'status') {
        // In order: the steps before the status change first.
        this.deltas.flush();
        const status = model.updateStatus(event.state === 'finished' && event.reason === 'stopped' ? 'stopped' : event.state);
        if (this.live) this.post(status);
      }
    } catch (error) {
      // Reading the run's selections failed (a damaged or vanished log): said once per event, in the panel and the log.
      this.context.log.warn(`Batch inspector: ${(error as Error).message}`);
      this.post({ type: 'notice', payload: { level: 'error', message: `Cannot follow ${model.runId}: ${(error as Error).message}` } });
    }
  }

  private post(...messages: InspectorHostMessage[]): void {
    for (const message of messages) void this.panel.webview.postMessage(message);
  }

  private async receive(raw: unknown): Promise<void> {
    const parsed = parseInspectorWebviewMessage(raw);
    const model = this.model;
    if (!parsed.ok) {
      this.context.log.warn(`Batch inspector: ignored a malformed message: ${parsed.problem}`);
      return;
    }
    if (!model) return;
    const message = parsed.message;
    try {
      switch (message.type) {
        case 'ready': {
          this.boot.ready();
          const step = this.requestedStep;
          this.requestedStep = undefined;
          const view = step === undefined ? message.payload.view : { ...message.payload.view, step, follow: false };
          this.post(...(await model.snapshot(view)));
          this.live = this.panel.visible;
          return;
        }
        case 'select-step':
          this.post(...(await model.selectStep(message.payload.step)));
          return;
        case 'follow':
          model.setFollow(message.payload.on);
          return;
        case 'images':
          this.post(await model.images(message.payload.ids, message.payload.size));
          return;
        default: {
          const unreachable: never = message;
          this.context.log.warn(`Batch inspector: unknown message ${JSON.stringify(unreachable)}`);
        }
      }
    } catch (error) {
      this.context.log.error(`Batch inspector: ${(error as Error).stack ?? error}`);
      this.post({ type: 'notice', payload: { level: 'error', message: (error as Error).message } });
    }
  }
}
