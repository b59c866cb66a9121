/**
 * The training worker process (DESIGN.md, "Layers"): forked by the editor or
 * the CLI (`child_process.fork`, bundled as dist/worker.js), it runs one run
 * and speaks the run protocol (src/protocol/worker.ts) over the IPC channel.
 * Native TensorFlow code that crashes, or a step that blocks, takes down only
 * this process; the host notices the exit and marks the run interrupted.
 */
import { WorkerSession } from './session';

if (!process.send) {
  process.stderr.write('The Sift worker is started by the editor or the sift CLI (child_process.fork), not on its own.\n');
  process.exit(2);
}

let pendingSends = 0;
let exitCode: number | undefined;
const exitWhenFlushed = (): void => {
  if (exitCode !== undefined && (pendingSends === 0 || !process.connected)) process.exit(exitCode);
};

const session = new WorkerSession({
  send(event) {
    if (!process.connected || !process.send) return;
    pendingSends++;
    process.send(event, undefined, {}, () => {
      pendingSends--;
      exitWhenFlushed();
    });
  },
  exit(code) {
    exitCode = code;
    exitWhenFlushed();
  },
});

process.on('message', (message) => session.receive(message));
// The host going away (editor closed, CLI killed) or a polite kill: checkpoint and leave the run paused.
process.on('disconnect', () => session.receive({ type: 'shutdown' }));
process.on('SIGTERM', () => session.receive({ type: 'shutdown' }));
// Ctrl-C in a terminal reaches the whole process group: the host decides what it means.
process.on('SIGINT', () => {});
process.on('uncaughtException', (error) => session.crash(error));
process.on('unhandledRejection', (error) => session.crash(error));
