/**
 * What the user hears about live runs, outside the Runs view and the status
 * bar: the worker's log in the "Sift" output channel, a cancellable progress
 * notification while a run starts up or counts through a long stage
 * (cancel = stop the run), and errors in the user's terms with the fix or
 * "Show Log".
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { WorkerEvent } from '../protocol/worker';
import { percent } from './present';
import type { LiveRun, ManagerEvent, RunManager } from './runManager';

/** What the extension remembers about a run it started, beyond what the worker says. */
export interface LaunchInfo {
  /** The config file a new run came from: a config error offers to open it. */
  configFile?: string;
  reference?: boolean;
  /** What the progress notification calls it until the run has an id. */
  label: string;
}

interface OpenProgress {
  report(message: string, progress?: { done: number; total: number }): void;
  end(): void;
}

export class RunNotifications implements vscode.Disposable {
  private readonly launches = new Map<number, LaunchInfo>();
  private readonly progress = new Map<number, OpenProgress>();
  /** The state last logged per run: a checkpoint report repeats it. */
  private readonly lastStatus = new Map<number, string>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly manager: RunManager,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.unsubscribe = manager.onEvent((event) => this.take(event));
  }

  /** Called right after `manager.start`: remembers the launch and shows start-up progress. */
  launched(run: LiveRun, info: LaunchInfo): void {
    this.launches.set(run.key, info);
    this.log.info(`Starting ${info.label} (worker ${run.key}, in ${run.cwd}).`);
    this.openProgress(run, `Sift: starting ${info.label}`);
  }

  dispose(): void {
    this.unsubscribe();
    for (const open of this.progress.values()) open.end();
    this.progress.clear();
  }

  private name(run: LiveRun): string {
    return run.run?.id ?? this.launches.get(run.key)?.label ?? 'the run';
  }

  private take(event: ManagerEvent): void {
    switch (event.type) {
      case 'changed': {
        const { run } = event;
        if (run.state === 'paused' || run.state === 'finished' || run.state === 'failed') this.closeProgress(run);
        return;
      }
      case 'worker':
        this.worker(event.run, event.event);
        return;
      case 'exited':
        this.exited(event.run);
        return;
      default: {
        const unreachable: never = event;
        throw new Error(`unknown manager event ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private worker(run: LiveRun, event: WorkerEvent): void {
    switch (event.type) {
      case 'log': {
        const prefix = `[${this.name(run)}]`;
        if (event.progress) {
          const { done, total } = event.progress;
          // Counters can come hundreds of times a second: log the stage's start and end only.
          if (done === 0 || done === total) this.log.info(`${prefix} ${event.message}: ${done}/${total}`);
          if (!this.progress.has(run.key) && done < total) this.openProgress(run, `Sift: ${event.message} (${this.name(run)})`);
          this.progress.get(run.key)?.report(event.message, event.progress);
        } else {
          if (event.level === 'warning') this.log.warn(`${prefix} ${event.message}`);
          else this.log.info(`${prefix} ${event.message}`);
          this.progress.get(run.key)?.report(event.message);
        }
        return;
      }
      case 'metrics':
        if (event.line.type === 'train') this.closeProgress(run);
        else this.log.info(`[${this.name(run)}] eval at step ${event.line.step}: image→text R@1 ${percent(event.line.i2t_r1)}, text→image R@1 ${percent(event.line.t2i_r1)}`);
        return;
      case 'status': {
        const said = `${event.state}${event.reason ? ` (${event.reason})` : ''}`;
        if (this.lastStatus.get(run.key) !== said) this.log.info(`[${this.name(run)}] ${said} at step ${event.step}/${event.totalSteps}`);
        this.lastStatus.set(run.key, said);
        return;
      }
      case 'selection':
        return;
      case 'error':
        this.log.error(`[${this.name(run)}] ${event.kind} error: ${event.message}${event.detail ? `\n${event.detail}` : ''}`);
        this.showWorkerError(run, event);
        return;
      default: {
        const unreachable: never = event;
        throw new Error(`unknown worker event ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private showWorkerError(run: LiveRun, event: Extract<WorkerEvent, { type: 'error' }>): void {
    const launch = this.launches.get(run.key);
    switch (event.kind) {
      case 'config': {
        const actions = launch?.configFile ? ['Open Configuration', 'Show Log'] : ['Show Log'];
        void vscode.window.showErrorMessage(`Sift could not start ${this.name(run)}: ${event.message}`, ...actions).then((choice) => {
          if (choice === 'Open Configuration' && launch?.configFile) void vscode.window.showTextDocument(vscode.Uri.file(launch.configFile));
          if (choice === 'Show Log') this.log.show();
        });
        return;
      }
      case 'write':
        void vscode.window.showErrorMessage(`Sift paused ${this.name(run)}: ${event.message} Free some space or fix the folder's permissions, then resume; nothing checkpointed is lost.`, 'Resume', 'Show Log').then((choice) => {
          if (choice === 'Resume') this.manager.resume(run);
          if (choice === 'Show Log') this.log.show();
        });
        return;
      case 'command':
        void vscode.window.showWarningMessage(`Sift: ${event.message}`);
        return;
      case 'run':
      case 'protocol':
        void vscode.window.showErrorMessage(`Sift: ${this.name(run)} failed: ${event.message}`, 'Show Log').then((choice) => {
          if (choice === 'Show Log') this.log.show();
        });
        return;
      default: {
        const unreachable: never = event.kind;
        throw new Error(`unknown error kind ${String(unreachable)}`);
      }
    }
  }

  private exited(run: LiveRun): void {
    this.closeProgress(run);
    const launch = this.launches.get(run.key);
    this.launches.delete(run.key);
    this.lastStatus.delete(run.key);
    const exit = run.exit;
    if (!exit) return;
    const name = this.name(run);
    if (!exit.clean) {
      this.log.error(`[${name}] ${exit.reason ?? 'The worker exited unexpectedly.'}`);
      const headline = (exit.reason ?? 'The training worker exited unexpectedly.').split('\n')[0];
      const actions = exit.markedInterrupted ? ['Resume', 'Show Log'] : ['Show Log'];
      void vscode.window.showErrorMessage(`Sift: ${headline}${exit.markedInterrupted ? ' The run is marked interrupted; resume continues it from its newest checkpoint.' : ''}`, ...actions).then((choice) => {
        if (choice === 'Resume' && run.run) void vscode.commands.executeCommand('sift.resumeRun', { dir: run.run.dir });
        if (choice === 'Show Log') this.log.show();
      });
      return;
    }
    this.log.info(`[${name}] worker exited (${run.state}${run.reason ? `, ${run.reason}` : ''}).`);
    if (run.state === 'finished' && run.reason === 'completed') {
      const best = run.bestI2tR1 === undefined ? '' : ` Best image→text R@1: ${percent(run.bestI2tR1)}.`;
      if (launch?.reference && run.run) {
        const where = path.relative(run.cwd, run.run.dir) || run.run.dir;
        void vscode.window.showInformationMessage(`Sift: reference model ${name} is trained.${best} Point a config's "reference" at ${where} to score with it.`, 'Copy Path').then((choice) => {
          if (choice === 'Copy Path') void vscode.env.clipboard.writeText(where);
        });
      } else {
        void vscode.window.showInformationMessage(`Sift: ${name} finished ${run.step} steps.${best}`, 'Open Dashboard').then((choice) => {
          if (choice === 'Open Dashboard' && run.run) void vscode.commands.executeCommand('sift.openDashboard', { dir: run.run.dir });
        });
      }
    } else if (run.state === 'finished' && run.reason === 'stopped') {
      void vscode.window.showInformationMessage(`Sift: ${name} stopped at step ${run.step}, checkpointed. Resume Run continues it.`);
    }
  }

  private openProgress(run: LiveRun, title: string): void {
    this.closeProgress(run);
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    let reporter: vscode.Progress<{ message?: string; increment?: number }> | undefined;
    let shownShare = 0;
    const buffered: { message: string; progress?: { done: number; total: number } }[] = [];
    const report = (message: string, progress?: { done: number; total: number }): void => {
      if (!reporter) {
        buffered.splice(0, buffered.length, { message, progress });
        return;
      }
      if (progress && progress.total > 0) {
        const share = (100 * progress.done) / progress.total;
        // A new stage counts from zero again.
        if (share < shownShare) shownShare = 0;
        reporter.report({ message: `${message}: ${progress.done}/${progress.total}`, increment: share - shownShare });
        shownShare = share;
      } else {
        reporter.report({ message });
      }
    };
    const open: OpenProgress = {
      report,
      end: () => {
        if (this.progress.get(run.key) === open) this.progress.delete(run.key);
        resolveDone();
      },
    };
    this.progress.set(run.key, open);
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
      reporter = progress;
      for (const pending of buffered.splice(0)) report(pending.message, pending.progress);
      token.onCancellationRequested(() => {
        this.log.info(`[${this.name(run)}] cancelled by the user: stopping the run.`);
        try {
          this.manager.stop(run);
        } catch {
          // The worker is already gone.
        }
        open.end();
      });
      return done;
    });
  }

  private closeProgress(run: LiveRun): void {
    this.progress.get(run.key)?.end();
  }
}
