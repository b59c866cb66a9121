/**
 * Sift notebooks in the editor: the `.siftnb` serializer, the "Sift" kernel,
 * the renderer's messaging (curves, live deltas, thumbnails and links for the
 * outputs it draws) and what "Sift: New Sift Notebook" does: write the starter
 * notebook (media/starter.siftnb) into the workspace folder and open it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { NotebookOutputHost } from '../../notebook/outputHost';
import { resolveSavedDir } from '../../notebook/outputs';
import { ThumbnailService } from '../../panels/thumbnails';
import { notebookRendererId, notebookType, parseNotebookRendererMessage, type NotebookRendererMessage } from '../../protocol/notebook';
import type { Sift } from '../extension';
import { notebookFolders, SiftNotebookController } from './controller';
import { SiftNotebookSerializer } from './serializer';

export function registerNotebooks(sift: Sift): vscode.Disposable[] {
  const thumbnails = new ThumbnailService();
  const messaging = vscode.notebooks.createRendererMessaging(notebookRendererId);
  // Outputs are tracked per notebook, and messages go to every Sift renderer (each ignores keys it does not
  // show): an editor object may be replaced while its output webview lives on (a tab hidden and shown again).
  const outputs = new NotebookOutputHost<vscode.NotebookDocument>((_notebook, message) => void messaging.postMessage(message), {
    runs: sift.manager,
    thumbnails,
    baseDirs: () => (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath),
  });

  const controller = new SiftNotebookController(sift);
  for (const notebook of vscode.workspace.notebookDocuments) controller.prefer(notebook);

  const onMessage = async (notebook: vscode.NotebookDocument, message: NotebookRendererMessage): Promise<void> => {
    const folders = notebookFolders(notebook, sift.workspace);
    if (!folders) return;
    switch (message.type) {
      case 'watch':
        await outputs.watch(notebook, folders.notebookDir, message.payload);
        return;
      case 'unwatch':
        outputs.unwatch(notebook, message.payload.key);
        return;
      case 'open': {
        // The Runs view's own commands, on run folders (as a notification's buttons call them).
        const runs = message.payload.dirs.map((dir) => ({ dir: resolveSavedDir(dir, folders.notebookDir) }));
        const command = { dashboard: 'sift.openDashboard', inspect: 'sift.inspectBatch', reveal: 'sift.revealRunFolder' }[message.payload.action];
        await vscode.commands.executeCommand(command, runs[0], runs);
        return;
      }
      default: {
        const unreachable: never = message;
        sift.log.warn(`Unknown renderer message ${JSON.stringify(unreachable)}`);
      }
    }
  };

  return [
    vscode.workspace.registerNotebookSerializer(notebookType, new SiftNotebookSerializer(), { transientOutputs: false }),
    controller,
    messaging.onDidReceiveMessage(({ editor, message }) => {
      const parsed = parseNotebookRendererMessage(message);
      if (!parsed.ok) return sift.log.warn(`Notebook renderer: ${parsed.problem}`);
      onMessage(editor.notebook, parsed.message).catch((error: unknown) => sift.log.error(`Notebook renderer message ${parsed.message.type}: ${(error as Error).stack ?? String(error)}`));
    }),
    vscode.workspace.onDidCloseNotebookDocument((notebook) => outputs.forget(notebook)),
    // The Sift kernel is the one for Sift notebooks: preselected, so Run All needs no kernel pick.
    vscode.workspace.onDidOpenNotebookDocument((notebook) => controller.prefer(notebook)),
    { dispose: () => outputs.dispose() },
    { dispose: () => void thumbnails.close() },
  ];
}

/** Sift: New Sift Notebook. Writes the starter notebook into the workspace folder (a fresh name) and opens it; untitled without a folder. */
export async function newNotebook(sift: Sift): Promise<void> {
  const starter = await vscode.workspace.fs.readFile(vscode.Uri.file(sift.context.asAbsolutePath(path.join('media', 'starter.siftnb'))));
  const workspace = sift.workspace;
  if (!workspace) {
    const data = new SiftNotebookSerializer().deserializeNotebook(starter);
    const notebook = await vscode.workspace.openNotebookDocument(notebookType, data);
    await vscode.window.showNotebookDocument(notebook);
    return;
  }
  let name = 'experiments.siftnb';
  for (let n = 2; fs.existsSync(path.join(workspace, name)); n++) name = `experiments-${n}.siftnb`;
  const uri = vscode.Uri.file(path.join(workspace, name));
  await vscode.workspace.fs.writeFile(uri, starter);
  const notebook = await vscode.workspace.openNotebookDocument(uri);
  await vscode.window.showNotebookDocument(notebook);
  sift.log.info(`New Sift notebook: ${uri.fsPath}`);
}
