/**
 * The VS Code side. Training never runs here: the extension host forks the
 * worker (DESIGN.md, "Layers"). This first version contributes the backend
 * check; the commands, Runs view and panels follow.
 */
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Sift', { log: true });
  context.subscriptions.push(
    log,
    vscode.commands.registerCommand('sift.checkGpuSetup', async () => {
      const terminal = vscode.window.createTerminal({ name: 'Sift doctor' });
      terminal.sendText(`node "${context.asAbsolutePath('bin/sift.js')}" doctor`);
      terminal.show();
    }),
  );
}

export function deactivate(): void {}
