/**
 * The "Sift" kernel of `.siftnb` notebooks: executes code cells through the
 * NotebookExecutor (src/notebook/executor.ts), one at a time per notebook in
 * the order they were asked for, so "Run All" trains the reference before the
 * run that names it. The editor shows each cell's execution order and time;
 * stopping a cell (or Interrupt) cancels its token, which pauses its run.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { NotebookExecutor, type CellInput, type CellIO } from '../../notebook/executor';
import { errorOutput, type CellOutput } from '../../notebook/outputs';
import { errorOutputMime, notebookType, runOutputMime } from '../../protocol/notebook';
import type { Sift } from '../extension';

const decoder = new TextDecoder();

/** A code cell's outputs as the executor reads them: JSON items only. */
function outputsOf(cell: vscode.NotebookCell): CellOutput[] {
  return cell.outputs.flatMap((output) =>
    output.items.flatMap((item) => {
      if (!item.mime.endsWith('+json') && item.mime !== errorOutputMime) return [];
      try {
        return [{ mime: item.mime, data: JSON.parse(decoder.decode(item.data)) as unknown }];
      } catch {
        return [];
      }
    }),
  );
}

const cellInput = (cell: vscode.NotebookCell): CellInput => ({ index: cell.index, source: cell.document.getText(), outputs: outputsOf(cell) });

const outputItem = (output: CellOutput): vscode.NotebookCellOutputItem => vscode.NotebookCellOutputItem.json(output.data, output.mime);

/** Where a notebook's runs start (its workspace folder) and its folder (saved run folders are relative to it). */
export function notebookFolders(notebook: vscode.NotebookDocument, fallback: string | undefined): { cwd: string; notebookDir: string } | undefined {
  const folder = vscode.workspace.getWorkspaceFolder(notebook.uri)?.uri.fsPath ?? fallback;
  const notebookDir = notebook.uri.scheme === 'file' ? path.dirname(notebook.uri.fsPath) : folder;
  const cwd = folder ?? notebookDir;
  return cwd && notebookDir ? { cwd, notebookDir } : undefined;
}

export class SiftNotebookController implements vscode.Disposable {
  private readonly controller: vscode.NotebookController;
  /** Per notebook: the executions asked for so far, run one after another. */
  private readonly queues = new WeakMap<vscode.NotebookDocument, Promise<void>>();
  private readonly executionOrder = new WeakMap<vscode.NotebookDocument, number>();

  constructor(private readonly sift: Sift) {
    this.controller = vscode.notebooks.createNotebookController('sift.notebook-kernel', notebookType, 'Sift');
    this.controller.supportedLanguages = ['json'];
    this.controller.supportsExecutionOrder = true;
    this.controller.description = 'Trains, branches and compares runs';
    this.controller.detail = 'Each run cell trains in its own worker, as a run started from the Runs view does.';
    this.controller.executeHandler = (cells, notebook) => this.enqueue(cells, notebook);
  }

  dispose(): void {
    this.controller.dispose();
  }

  /** Makes this the notebook's kernel without asking (it is the only one that runs Sift cells). */
  prefer(notebook: vscode.NotebookDocument): void {
    if (notebook.notebookType === notebookType) this.controller.updateNotebookAffinity(notebook, vscode.NotebookControllerAffinity.Preferred);
  }

  private enqueue(cells: vscode.NotebookCell[], notebook: vscode.NotebookDocument): void {
    const executions: vscode.NotebookCellExecution[] = [];
    for (const cell of cells) {
      if (cell.kind !== vscode.NotebookCellKind.Code) continue;
      try {
        // Pending from now on: the editor shows the cell queued.
        executions.push(this.controller.createNotebookCellExecution(cell));
      } catch (error) {
        // Already queued or executing: the editor does not run a cell twice at once.
        this.sift.log.debug(`cell ${cell.index + 1} not queued: ${(error as Error).message}`);
      }
    }
    const previous = this.queues.get(notebook) ?? Promise.resolve();
    const next = previous.then(async () => {
      for (const execution of executions) await this.run(execution);
    });
    this.queues.set(
      notebook,
      next.catch((error: unknown) => this.sift.log.error(`Notebook execution failed: ${(error as Error).stack ?? String(error)}`)),
    );
  }

  private async run(execution: vscode.NotebookCellExecution): Promise<void> {
    const { cell } = execution;
    if (execution.token.isCancellationRequested || cell.index < 0) {
      execution.end(undefined);
      return;
    }
    const notebook = cell.notebook;
    const order = (this.executionOrder.get(notebook) ?? maxExecutionOrder(notebook)) + 1;
    this.executionOrder.set(notebook, order);
    execution.executionOrder = order;
    execution.start(Date.now());
    const abort = new AbortController();
    const cancelled = execution.token.onCancellationRequested(() => abort.abort());
    let success: boolean | undefined = false;
    try {
      const folders = notebookFolders(notebook, this.sift.workspace);
      if (!folders) {
        this.replace(execution, [errorOutput('No folder', 'Open a folder (or save the notebook in one): runs are written beside the notebook, in .sift/runs.')]);
      } else {
        const executor = new NotebookExecutor({
          manager: this.sift.manager,
          cwd: folders.cwd,
          notebookDir: folders.notebookDir,
          settings: () => this.sift.settings,
          trusted: () => vscode.workspace.isTrusted,
        });
        const earlier = notebook
          .getCells(new vscode.NotebookRange(0, cell.index))
          .filter((c) => c.kind === vscode.NotebookCellKind.Code)
          .map(cellInput);
        const io: CellIO = {
          signal: abort.signal,
          replace: (outputs) => this.replace(execution, outputs),
          ask: async (message, choices) => vscode.window.showInformationMessage(`Sift: ${message}`, { modal: true }, ...choices),
        };
        success = await executor.execute(cellInput(cell), earlier, io);
      }
    } catch (error) {
      this.sift.log.error(`cell ${cell.index + 1}: ${(error as Error).stack ?? String(error)}`);
      this.replace(execution, [errorOutput('Sift', `${(error as Error).message} (see Sift: Show Log)`)]);
      success = false;
    } finally {
      cancelled.dispose();
    }
    execution.end(success, Date.now());
  }

  /**
   * Replaces the cell's outputs. A run output updated in place (same output,
   * new data) keeps its renderer and its charts; anything else is new outputs.
   */
  private replace(execution: vscode.NotebookCellExecution, outputs: CellOutput[]): void {
    const current = execution.cell.outputs;
    const sameShape = current.length === outputs.length && outputs.every((output, i) => output.mime === runOutputMime && current[i].items.length === 1 && current[i].items[0].mime === runOutputMime);
    const done = sameShape
      ? Promise.all(outputs.map((output, i) => execution.replaceOutputItems(outputItem(output), current[i])))
      : execution.replaceOutput(outputs.map((output) => new vscode.NotebookCellOutput([outputItem(output)])));
    void Promise.resolve(done).then(undefined, (error: unknown) => this.sift.log.debug(`output not replaced: ${(error as Error).message}`));
  }
}

/** The highest execution order the notebook shows (saved in the file): new executions count on from it. */
function maxExecutionOrder(notebook: vscode.NotebookDocument): number {
  return Math.max(0, ...notebook.getCells().map((cell) => cell.executionSummary?.executionOrder ?? 0));
}
