/**
 * The Runs view: every run in the runs folder, each branch under its parent
 * at its fork step, with a status icon, its step and best eval. Redrawn from
 * worker events (RunManager) a few times a second at most; the disk is
 * reread when a run starts or ends, when the user refreshes, and when a
 * run.json changes under the runs folder (runs started elsewhere, e.g. the
 * CLI) — never polled.
 */
import * as vscode from 'vscode';
import { describeBackend } from '../core/runs/record';
import type { TrainConfig } from '../core/train/config';
import { Coalescer } from './coalesce';
import { flatten, runNodes, type RunNode } from './present';
import type { RunIndex } from './runIndex';
import type { RunManager } from './runManager';

export class RunsTreeProvider implements vscode.TreeDataProvider<RunNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private nodes: RunNode[] = [];
  private readonly redraw: Coalescer;
  private readonly reread: Coalescer;
  private readonly disposables: vscode.Disposable[] = [];
  private watcher: vscode.FileSystemWatcher;
  /** Told after each redraw (context keys, the status bar's backend). */
  private readonly redrawn = new vscode.EventEmitter<readonly RunNode[]>();
  readonly onDidRedraw = this.redrawn.event;

  constructor(
    private index: RunIndex,
    private readonly manager: RunManager,
  ) {
    this.redraw = new Coalescer(() => this.rebuild(), 250);
    this.reread = new Coalescer(() => void this.index.refresh().then(() => this.redraw.request()), 500);
    const unsubscribe = manager.onEvent((event) => {
      if (event.type === 'worker') return;
      // A new folder, a run that ended, a new checkpoint: the record on disk changed.
      if (event.type === 'exited' || (event.run.run && !this.index.get(event.run.run.dir)) || event.run.state !== 'running') this.reread.request();
      this.redraw.request();
    });
    this.disposables.push({ dispose: unsubscribe }, this.changed, this.redrawn);
    this.watcher = this.watch();
    this.reread.request();
  }

  /** The runs folder changed (a setting): list the new one. */
  setIndex(index: RunIndex): void {
    this.index = index;
    this.watcher.dispose();
    this.watcher = this.watch();
    this.refresh();
  }

  get root(): string {
    return this.index.root;
  }

  /** Every run shown, parents first. */
  get all(): RunNode[] {
    return flatten(this.nodes);
  }

  /** The backend a run trains on, from its run.json as last read. */
  backendOf(dir: string): string | undefined {
    const backend = this.index.get(dir)?.json?.backend;
    return backend && describeBackend(backend);
  }

  /** A run's resolved config, from its run.json as last read. */
  configOf(dir: string): TrainConfig | undefined {
    return this.index.get(dir)?.json?.config;
  }

  find(dir: string): RunNode | undefined {
    return this.all.find((node) => node.dir === dir);
  }

  refresh(): void {
    this.reread.request();
  }

  /** Rereads the disk now and waits for it (commands that need the newest list). */
  async refreshNow(): Promise<void> {
    await this.index.refresh();
    this.rebuild();
  }

  getTreeItem(node: RunNode): vscode.TreeItem {
    const item = new vscode.TreeItem(node.label, node.children.length > 0 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    // A run that gains its first branch becomes a new item, so it opens expanded and the branch shows.
    item.id = `${node.dir || `live:${node.label}`}${node.children.length > 0 ? '#branched' : ''}`;
    item.description = node.description;
    item.tooltip = new vscode.MarkdownString(node.tooltip);
    item.iconPath = new vscode.ThemeIcon(node.icon.id, node.icon.color ? new vscode.ThemeColor(node.icon.color) : undefined);
    item.contextValue = node.contextValue;
    item.accessibilityInformation = { label: `${node.label}, ${node.status}, ${node.description}` };
    if (node.dir) item.command = { command: 'sift.openDashboard', title: 'Open Dashboard', arguments: [node] };
    return item;
  }

  getChildren(node?: RunNode): RunNode[] {
    return node ? node.children : this.nodes;
  }

  getParent(node: RunNode): RunNode | undefined {
    return node.parent === null ? undefined : this.all.find((candidate) => candidate.children.includes(node));
  }

  dispose(): void {
    this.redraw.dispose();
    this.reread.dispose();
    this.watcher.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }

  /** Secondary source: runs made or changed by another process (the CLI). Live progress comes from worker events. */
  private watch(): vscode.FileSystemWatcher {
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(this.index.root), '*/run.json'));
    watcher.onDidCreate(() => this.reread.request());
    watcher.onDidChange(() => this.reread.request());
    watcher.onDidDelete(() => this.reread.request());
    return watcher;
  }

  private rebuild(): void {
    const next = runNodes(this.index.runs, this.manager.runs);
    const changed = updateInPlace(this.nodes, next);
    if (changed === 'structure') {
      this.nodes = next;
      this.changed.fire(undefined);
    } else {
      // Only the rows that changed are redrawn: an open context menu or a hover stays put while a run trains.
      for (const node of changed) this.changed.fire(node);
    }
    this.redrawn.fire(this.nodes);
  }
}

const shape = (nodes: readonly RunNode[]): string => JSON.stringify(nodes.map((node) => [node.dir, node.label, shape(node.children)]));

/**
 * Copies `next` into the nodes shown now when the tree's shape is the same
 * (the view knows its elements by identity), and returns those whose row
 * changed; 'structure' when runs came, went or moved.
 */
function updateInPlace(current: RunNode[], next: RunNode[]): RunNode[] | 'structure' {
  if (shape(current) !== shape(next)) return 'structure';
  const changed: RunNode[] = [];
  const visit = (old: RunNode[], fresh: RunNode[]): void => {
    old.forEach((node, i) => {
      const update = fresh[i];
      const { children: oldChildren, ...oldRow } = node;
      const { children: freshChildren, ...freshRow } = update;
      if (JSON.stringify(oldRow) !== JSON.stringify(freshRow)) {
        Object.assign(node, freshRow);
        changed.push(node);
      }
      visit(oldChildren, freshChildren);
    });
  };
  visit(current, next);
  return changed;
}
