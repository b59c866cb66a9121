/**
 * The VS Code side (DESIGN.md, "Layers"): the commands, the Runs view, the
 * status bar and the panels. Training never runs here: each run is a forked
 * worker (RunManager), and this host only relays its events to the views, so
 * the editor stays responsive whatever a run does.
 */
import * as fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { WorkerClient } from '../worker/client';
import { registerCommands } from './commands';
import { registerNotebooks } from './notebook';
import { RunNotifications } from './notifications';
import { PanelHost } from './panels';
import { RunIndex } from './runIndex';
import { RunManager } from './runManager';
import { readSettings, runsRoot, type SiftSettings } from './runConfig';
import { RunsTreeProvider } from './runsView';
import { RunStatusBar } from './statusBar';
import { isResumable, type RunNode } from './present';

/** What the commands share. */
export class Sift implements vscode.Disposable {
  readonly log = vscode.window.createOutputChannel('Sift', { log: true });
  readonly manager = new RunManager(({ cwd }) => WorkerClient.start({ cwd }));
  readonly notifications = new RunNotifications(this.manager, this.log);
  readonly tree: RunsTreeProvider;
  readonly view: vscode.TreeView<RunNode>;
  readonly panels: PanelHost;
  private readonly statusBar: RunStatusBar;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(readonly context: vscode.ExtensionContext) {
    this.tree = new RunsTreeProvider(new RunIndex(this.runsRoot), this.manager);
    this.view = vscode.window.createTreeView('sift.runs', { treeDataProvider: this.tree, showCollapseAll: true, canSelectMany: true });
    this.statusBar = new RunStatusBar(this.manager, this.tree);
    this.panels = new PanelHost(context, this.manager, this.log);
    this.disposables.push(
      this.log,
      this.notifications,
      this.tree,
      this.view,
      this.statusBar,
      this.panels,
      this.tree.onDidRedraw((nodes) => this.setContextKeys(nodes)),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('sift.runsFolder')) this.tree.setIndex(new RunIndex(this.runsRoot));
        if (event.affectsConfiguration('sift')) this.reportSettingProblems();
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.tree.setIndex(new RunIndex(this.runsRoot))),
    );
    this.reportSettingProblems();
    this.setContextKeys([]);
  }

  get settings(): SiftSettings {
    const configuration = vscode.workspace.getConfiguration('sift');
    return readSettings((key) => configuration.get(key)).settings;
  }

  /** The first workspace folder: runs start there, and relative paths in configs resolve against it. */
  get workspace(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  }

  get runsRoot(): string {
    return runsRoot(this.settings, this.workspace ?? this.context.globalStorageUri.fsPath);
  }

  /** The nodes a command acts on: those it was invoked on (context menu, inline button), else the view's selection. */
  selectedNodes(arg?: unknown, args?: unknown): RunNode[] {
    if (Array.isArray(args) && args.length > 0) return args.map((a) => this.resolveNode(a)).filter((n): n is RunNode => n !== undefined);
    const one = this.resolveNode(arg);
    if (one) return [one];
    return [...this.view.selection];
  }

  /** A tree node, or an object with a run folder (`{ dir }` from a notification), as the newest node for it. */
  resolveNode(arg: unknown): RunNode | undefined {
    if (!arg || typeof arg !== 'object' || typeof (arg as { dir?: unknown }).dir !== 'string') return undefined;
    const dir = (arg as { dir: string }).dir;
    return this.tree.find(dir) ?? (arg as RunNode);
  }

  dispose(): void {
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }

  /** The `when` clauses' keys, as last set: only changes cross to the window. */
  private readonly contextKeys = new Map<string, boolean>();

  private setContextKeys(nodes: readonly RunNode[]): void {
    const keys: Record<string, boolean> = {
      'sift.hasRuns': nodes.length > 0,
      'sift.liveRun': this.manager.runs.length > 0,
      'sift.trainingRun': this.manager.runs.some((run) => run.state === 'running' || run.state === 'starting'),
      'sift.resumableRun': this.tree.all.some(isResumable),
    };
    for (const [key, value] of Object.entries(keys)) {
      if (this.contextKeys.get(key) === value) continue;
      this.contextKeys.set(key, value);
      void vscode.commands.executeCommand('setContext', key, value);
    }
  }

  private reportSettingProblems(): void {
    const configuration = vscode.workspace.getConfiguration('sift');
    const { problems } = readSettings((key) => configuration.get(key));
    for (const problem of problems) {
      this.log.warn(problem);
      void vscode.window.showWarningMessage(`Sift: ${problem}`, 'Open Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'sift.');
      });
    }
  }
}

let active: Sift | undefined;

/**
 * With SIFT_HOST_DELAY_LOG=<file> in the editor's environment (the end-to-end
 * tests set it), the extension host's event-loop delay is appended to that
 * file every two seconds, one JSON line per window: the proof that relaying
 * a run's events never blocks the editor.
 */
function logEventLoopDelay(file: string): vscode.Disposable {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  const timer = setInterval(() => {
    const line = { at: new Date().toISOString(), liveRuns: active?.manager.runs.length ?? 0, p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), resolutionMs: 5 };
    histogram.reset();
    fs.appendFile(file, `${JSON.stringify(line)}\n`, () => {});
  }, 2000);
  return { dispose: () => (clearInterval(timer), histogram.disable()) };
}

export function activate(context: vscode.ExtensionContext): void {
  active = new Sift(context);
  context.subscriptions.push(active, ...registerCommands(active), ...registerNotebooks(active));
  const delayLog = process.env.SIFT_HOST_DELAY_LOG;
  if (delayLog) context.subscriptions.push(logEventLoopDelay(delayLog));
}

/** The window is closing: each worker checkpoints and leaves its run paused, resumable. */
export async function deactivate(): Promise<void> {
  const sift = active;
  active = undefined;
  await sift?.manager.shutdown(4000);
}
