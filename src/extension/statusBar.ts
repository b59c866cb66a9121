/**
 * The status bar item of the active run: step / total, examples/s, ETA and
 * backend (the stage while it starts up); a click opens its dashboard.
 * Redrawn from worker events, a few times a second at most.
 */
import * as vscode from 'vscode';
import { Coalescer } from './coalesce';
import { statusBarView } from './present';
import type { RunManager } from './runManager';
import type { RunsTreeProvider } from './runsView';

export class RunStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('sift.activeRun', vscode.StatusBarAlignment.Left, 10);
  private readonly redraw = new Coalescer(() => this.draw(), 250);
  private readonly unsubscribe: () => void;
  private readonly treeRedrawn: vscode.Disposable;

  constructor(
    private readonly manager: RunManager,
    private readonly tree: RunsTreeProvider,
  ) {
    this.item.name = 'Sift: active run';
    this.unsubscribe = manager.onEvent((event) => {
      if (event.type !== 'worker') this.redraw.request();
    });
    // The backend is in run.json, which the Runs view rereads once the run is up.
    this.treeRedrawn = tree.onDidRedraw(() => this.redraw.request());
  }

  dispose(): void {
    this.unsubscribe();
    this.treeRedrawn.dispose();
    this.redraw.dispose();
    this.item.dispose();
  }

  private draw(): void {
    const run = this.manager.active;
    if (!run) {
      this.item.hide();
      return;
    }
    const backend = run.run ? this.tree.backendOf(run.run.dir) : undefined;
    const view = statusBarView(run, backend);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = run.run ? { command: 'sift.openDashboard', title: 'Open Dashboard', arguments: [{ dir: run.run.dir }] } : 'sift.showLog';
    this.item.backgroundColor = run.state === 'paused' && run.reason === 'write-failed' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }
}
