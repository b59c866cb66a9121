/**
 * What the Runs view and the status bar show, as plain data: the runs on disk
 * (RunIndex) with the live ones (RunManager) laid over them. The editor-facing
 * classes turn these into TreeItems and a StatusBarItem; keeping the wording
 * and the rules here lets plain Node tests check them.
 */
import * as path from 'node:path';
import { formatCount, formatDuration } from '../cli/format';
import { describeBackend } from '../core/runs/record';
import type { IndexedRun } from './runIndex';
import { throughput, type LiveRun } from './runManager';

/** A run's status as the user sees it: the record's, or the live worker's when one has the run open. */
export type DisplayStatus = 'starting' | 'running' | 'paused' | 'stopping' | 'finished' | 'stopped' | 'failed' | 'interrupted' | 'unreadable';

export interface RunNode {
  dir: string;
  id: string;
  label: string;
  description: string;
  /** Markdown. */
  tooltip: string;
  status: DisplayStatus;
  /** A worker of this window has the run open. */
  live: boolean;
  /** Codicon id and theme colour id of the status icon. */
  icon: { id: string; color?: string };
  /** For `when` clauses of the context menu: `run.<status>.<live|disk>`. */
  contextValue: string;
  step: number;
  totalSteps: number;
  parent: string | null;
  forkStep: number | null;
  children: RunNode[];
}

export const statusIcons: Record<DisplayStatus, { id: string; color?: string }> = {
  starting: { id: 'loading~spin' },
  running: { id: 'sync~spin', color: 'charts.blue' },
  paused: { id: 'debug-pause', color: 'charts.yellow' },
  stopping: { id: 'loading~spin' },
  finished: { id: 'pass', color: 'charts.green' },
  stopped: { id: 'debug-stop' },
  failed: { id: 'error', color: 'errorForeground' },
  interrupted: { id: 'warning', color: 'list.warningForeground' },
  unreadable: { id: 'question' },
};

export const percent = (x: number | undefined): string => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);

function liveStatus(run: LiveRun): DisplayStatus {
  if (run.state === 'finished') return run.reason === 'stopped' ? 'stopped' : 'finished';
  return run.state;
}

/** A row's description: method, steps, best recall, where a branch forked, and the state (while starting, what it is doing). */
function describe(node: Pick<RunNode, 'status' | 'step' | 'totalSteps' | 'forkStep'>, method: string, best: number | undefined, reason?: string, stage?: string): string {
  const parts = [method, `${node.step}/${node.totalSteps}`];
  if (best !== undefined) parts.push(`R@1 ${percent(best)}`);
  if (node.forkStep !== null) parts.push(`from step ${node.forkStep}`);
  if (node.status === 'paused' && reason === 'write-failed') parts.push('paused: a write failed');
  else if (node.status === 'starting' && stage) parts.push(stage);
  else if (node.status !== 'running' && node.status !== 'finished') parts.push(node.status);
  return parts.join(' · ');
}

function tooltip(run: IndexedRun | undefined, live: LiveRun | undefined, node: Pick<RunNode, 'id' | 'dir' | 'status' | 'step' | 'totalSteps' | 'parent' | 'forkStep'>, best: number | undefined): string {
  const lines = [`**${node.id}** — ${node.status}`, '', `step ${node.step} of ${node.totalSteps}`];
  const json = run?.json;
  if (json) lines.push(`method \`${json.config.method}\`, batch ${json.config.batchSize}, data \`${json.config.data}\``);
  if (json?.backend) lines.push(`backend \`${describeBackend(json.backend)}\``);
  if (best !== undefined) lines.push(`best image→text R@1 ${percent(best)}`);
  if (node.parent !== null) lines.push(`branch of \`${node.parent}\` at step ${node.forkStep}`);
  const diff = json?.configDiff ? Object.entries(json.configDiff) : [];
  if (diff.length > 0) lines.push(`changed: ${diff.map(([key, change]) => `\`${key}\` ${JSON.stringify(change?.from)} → ${JSON.stringify(change?.to)}`).join(', ')}`);
  if (json?.error && (node.status === 'failed' || node.status === 'interrupted')) lines.push('', `⚠ ${json.error.message}`);
  if (live?.stage) lines.push('', live.stage.message);
  lines.push('', `\`${node.dir}\``);
  return lines.join('  \n');
}

/**
 * The Runs view's tree: the runs on disk, each with its live state when a
 * worker of this window has it open, and the live runs whose folder is not
 * (yet) on the index's list as extra roots.
 */
export function runNodes(forest: readonly IndexedRun[], live: readonly LiveRun[]): RunNode[] {
  const liveByDir = new Map<string, LiveRun>();
  for (const run of live) if (run.run) liveByDir.set(run.run.dir, run);
  const listed = new Set<string>();

  const fromDisk = (run: IndexedRun): RunNode => {
    listed.add(run.dir);
    const open = liveByDir.get(run.dir);
    const status: DisplayStatus = open ? liveStatus(open) : run.status;
    const step = open ? Math.max(open.step, run.step) : run.step;
    const totalSteps = open?.totalSteps || run.totalSteps;
    const best = maxDefined(run.bestI2tR1, open?.bestI2tR1);
    const base = { id: run.id, dir: run.dir, status, step, totalSteps, parent: run.parent, forkStep: run.forkStep };
    return {
      ...base,
      label: run.id,
      description: describe(base, run.method, best, open?.reason, open?.stage?.message),
      tooltip: tooltip(run, open, base, best),
      live: open !== undefined,
      icon: statusIcons[status],
      contextValue: `run.${status}.${open ? 'live' : 'disk'}`,
      children: run.children.map(fromDisk),
    };
  };
  const nodes = forest.map(fromDisk);

  for (const run of live) {
    if (run.run && listed.has(run.run.dir)) continue;
    const status = liveStatus(run);
    const id = run.run?.id ?? 'new run';
    const base = { id, dir: run.run?.dir ?? '', status, step: run.step, totalSteps: run.totalSteps, parent: run.run?.parent ?? null, forkStep: run.run?.forkStep ?? null };
    nodes.push({
      ...base,
      label: id,
      description: describe(base, run.request.kind === 'new' ? (run.request.config.method ?? 'uniform') : run.request.kind, run.bestI2tR1, run.reason, run.stage?.message),
      tooltip: tooltip(undefined, run, base, run.bestI2tR1),
      live: true,
      icon: statusIcons[status],
      contextValue: `run.${status}.live`,
      children: [],
    });
  }
  return nodes;
}

const maxDefined = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.max(a, b));

/** Every node of a tree, parents first. */
export function flatten(nodes: readonly RunNode[]): RunNode[] {
  return nodes.flatMap((node) => [node, ...flatten(node.children)]);
}

/** Whether the user can continue the run: paused in this window, or on disk and not finished or being trained elsewhere. */
export function isResumable(node: Pick<RunNode, 'status' | 'live'>): boolean {
  if (node.live) return node.status === 'paused';
  return node.status === 'paused' || node.status === 'stopped' || node.status === 'interrupted' || node.status === 'failed';
}

export interface StatusBarView {
  text: string;
  tooltip: string;
}

/** The status bar item for the active run: step / total, examples/s, ETA and backend; the stage while it starts. */
export function statusBarView(run: LiveRun, backend: string | undefined): StatusBarView {
  const id = run.run?.id ?? 'new run';
  const folder = run.run ? `\n${run.run.dir}` : '';
  const click = '\nClick to open the dashboard.';
  const steps = `${run.step}/${run.totalSteps || '?'}`;
  switch (run.state) {
    case 'starting': {
      const stage = run.stage?.message ?? 'starting';
      const share = run.stage?.progress && run.stage.progress.total > 0 ? ` ${Math.floor((100 * run.stage.progress.done) / run.stage.progress.total)}%` : '';
      return { text: `$(loading~spin) Sift: ${stage}${share}`, tooltip: `Run ${id} is starting: ${stage}.${folder}${click}` };
    }
    case 'running':
    case 'stopping': {
      const rate = throughput(run);
      const parts = [`$(sync~spin) Sift ${steps}`];
      if (rate) parts.push(`${formatCount(Math.round(rate.examplesPerSecond))} ex/s`, `ETA ${formatDuration(rate.etaSeconds)}`);
      if (backend) parts.push(backend);
      if (run.stage?.progress) parts.push(`${run.stage.message} ${run.stage.progress.done}/${run.stage.progress.total}`);
      const what = run.state === 'stopping' ? 'is stopping at the next step' : 'is training';
      return { text: parts.join(' · '), tooltip: `Run ${id} ${what}: step ${steps}${backend ? ` on the ${backend} backend` : ''}.${folder}${click}` };
    }
    case 'paused':
      return {
        text: `$(debug-pause) Sift paused ${steps}`,
        tooltip: `Run ${id} is paused at step ${run.step}${run.reason === 'write-failed' ? ' because a write failed (disk full or read-only?): fix that, then resume' : ', checkpointed'}.${folder}${click}`,
      };
    case 'finished':
      return { text: `$(pass) Sift ${run.reason === 'stopped' ? 'stopped' : 'finished'} ${steps}`, tooltip: `Run ${id} ${run.reason === 'stopped' ? 'was stopped' : 'finished'}.${folder}${click}` };
    case 'failed':
      return { text: `$(error) Sift failed at ${steps}`, tooltip: `Run ${id} failed. See the Sift log.${folder}${click}` };
    default: {
      const unreachable: never = run.state;
      throw new Error(`unknown run state ${String(unreachable)}`);
    }
  }
}

/** A run folder for display: relative to the workspace when inside it. */
export function displayPath(dir: string, workspace: string | undefined): string {
  if (!workspace) return dir;
  const relative = path.relative(workspace, dir);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : dir;
}
