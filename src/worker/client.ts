/**
 * The host's side of the run protocol: forks the worker, validates what it
 * sends, and notices when it dies. A worker that exits without ending its
 * run cleanly (a signal, running out of memory, a native crash) is reported
 * with the likely reason the moment the process is gone, and its run.json is
 * rewritten from `running` to `interrupted`. The CLI uses this today; the
 * editor uses the same class.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { markInterrupted } from '../core/runs/record';
import { parseWorkerEvent, type StatusEvent, type WorkerCommand, type WorkerEvent } from '../protocol/worker';

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The worker ended as the protocol says: after `finished` or `failed`, or paused by `shutdown`. */
  clean: boolean;
  /** For an unclean exit, what happened in the user's terms. */
  reason?: string;
  /** Whether this host rewrote the run's run.json to `interrupted`. */
  markedInterrupted: boolean;
  lastStatus?: StatusEvent;
}

export interface WorkerOptions {
  /** The worker script; default: dist/worker.js beside the bundle, or src/worker/main.ts run through tsx (tests, development). */
  entry?: string;
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** dist/worker.js when running from the bundle (dist/cli.js, dist/extension.js); the TypeScript entry otherwise. */
function defaultEntry(): { entry: string; execArgv: string[] } {
  // __filename, not __dirname: a TypeScript loader may leave only the former right.
  const here = path.dirname(__filename);
  const bundled = path.join(here, 'worker.js');
  if (fs.existsSync(bundled)) return { entry: bundled, execArgv: [] };
  // Resolved to a file so the worker finds the loader whatever its cwd.
  const loader = pathToFileURL(require.resolve('tsx')).href;
  return { entry: path.join(here, 'main.ts'), execArgv: ['--import', loader] };
}

const stderrLinesKept = 20;

export class WorkerClient {
  readonly exited: Promise<WorkerExit>;
  lastStatus: StatusEvent | undefined;
  /** The newest step the worker reported (metrics or status). */
  lastStep = 0;
  private lastError: Extract<WorkerEvent, { type: 'error' }> | undefined;
  private readonly listeners = new Set<(event: WorkerEvent) => void>();
  private readonly stderrTail: string[] = [];
  private shutdownSent = false;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message) => {
      const parsed = parseWorkerEvent(message);
      this.deliver(parsed.ok ? parsed.message : { type: 'error', kind: 'protocol', message: `The worker sent a malformed message: ${parsed.problem}` });
    });
    // Pipes must be drained or a chatty worker blocks; stderr is kept for the crash report.
    child.stdout?.on('data', () => {});
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderrTail.push(...text.split('\n').filter((line) => line.trim() !== ''));
      this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - stderrLinesKept));
    });
    this.exited = new Promise((resolve) => {
      let settled = false;
      const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        resolve(this.finish(code, signal));
      };
      // 'close' comes once the IPC channel has delivered everything; 'exit' is the death itself.
      child.on('close', settle);
      child.on('exit', (code, signal) => setTimeout(() => settle(code, signal), 200).unref());
      child.on('error', () => {
        // A failed fork or a failed kill: 'exit' or 'close' still tell the outcome.
      });
    });
  }

  static start(options: WorkerOptions = {}): WorkerClient {
    const defaults = defaultEntry();
    const child = fork(options.entry ?? defaults.entry, [], {
      execArgv: options.execArgv ?? (options.entry ? [] : defaults.execArgv),
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    return new WorkerClient(child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(command: WorkerCommand): void {
    if (command.type === 'shutdown') this.shutdownSent = true;
    if (this.child.connected) this.child.send(command);
  }

  /** Sends a raw value, valid or not (tests of the worker's validation). */
  sendRaw(message: unknown): void {
    if (this.child.connected) this.child.send(message as object);
  }

  onEvent(listener: (event: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The next event that satisfies `predicate`; rejects if the worker exits first or `timeoutMs` passes. */
  waitFor(predicate: (event: WorkerEvent) => boolean, timeoutMs = 60_000): Promise<WorkerEvent> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        unsubscribe();
        clearTimeout(timer);
      };
      const unsubscribe = this.onEvent((event) => {
        if (!predicate(event)) return;
        done();
        resolve(event);
      });
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching worker event within ${timeoutMs} ms`));
      }, timeoutMs);
      void this.exited.then((exit) => {
        done();
        reject(new Error(`the worker exited (${exit.reason ?? `code ${exit.code}`}) before the expected event`));
      });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  private deliver(event: WorkerEvent): void {
    if (event.type === 'status') {
      this.lastStatus = event;
      this.lastStep = event.step;
    }
    if (event.type === 'metrics') this.lastStep = event.line.step;
    if (event.type === 'error') this.lastError = event;
    for (const listener of [...this.listeners]) listener(event);
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): WorkerExit {
    const status = this.lastStatus;
    const clean = status !== undefined && (status.state === 'finished' || status.state === 'failed' || (status.state === 'paused' && status.reason === 'shutdown'));
    if (clean) return { code, signal, clean, markedInterrupted: false, lastStatus: status };
    const reason = this.describeExit(code, signal);
    const markedInterrupted = status?.run ? markInterrupted(status.run.dir, reason) : false;
    return { code, signal, clean, reason, markedInterrupted, lastStatus: status };
  }

  private describeExit(code: number | null, signal: NodeJS.Signals | null): string {
    const stderr = this.stderrTail.join('\n');
    let what: string;
    if (/heap out of memory|Allocation failed|Out of memory|OOM/i.test(stderr)) what = 'ran out of memory';
    else if (signal === 'SIGKILL') what = 'was killed (SIGKILL), most often by the system running out of memory';
    else if (signal === 'SIGSEGV' || signal === 'SIGBUS' || signal === 'SIGILL' || signal === 'SIGABRT') what = `crashed in native code (${signal})`;
    else if (signal) what = `was terminated by ${signal}`;
    else if (code !== 0) what = `exited with code ${code}${this.lastError ? ` after: ${this.lastError.message}` : ''}`;
    else if (this.shutdownSent) what = 'exited on shutdown before it could checkpoint';
    else what = 'exited without finishing the run';
    const step = this.lastStatus ? ` at step ${this.lastStep}` : '';
    const tail = stderr ? `\nLast output:\n${this.stderrTail.slice(-5).join('\n')}` : '';
    return `The training worker${step} ${what}.${tail}`;
  }
}
