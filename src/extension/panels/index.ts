/**
 * The webview panels: the dashboard and the batch inspector, one class each
 * (createOrShow, revive), with a serializer each so an open panel comes back
 * after a reload. The inspector's module (image decoding, the data readers)
 * loads on first use, so activation stays light.
 */
import * as vscode from 'vscode';
import type { RunManager } from '../runManager';
import { DashboardPanel } from './dashboardPanel';
import type { PanelContext } from './webview';

export class PanelHost implements vscode.Disposable {
  private readonly context: PanelContext;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(extension: vscode.ExtensionContext, manager: RunManager, log: vscode.LogOutputChannel) {
    this.context = {
      extensionUri: extension.extensionUri,
      manager,
      log,
      workspaceFolders: () => (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath),
    };
    this.disposables.push(
      vscode.window.registerWebviewPanelSerializer(DashboardPanel.viewType, {
        deserializeWebviewPanel: async (panel, state) => void DashboardPanel.revive(panel, this.context, state),
      }),
      vscode.window.registerWebviewPanelSerializer('sift.inspector', {
        deserializeWebviewPanel: async (panel, state) => void (await import('./inspectorPanel.ts')).InspectorPanel.revive(panel, this.context, state),
      }),
    );
  }

  async openDashboard(dirs: string[]): Promise<void> {
    DashboardPanel.createOrShow(this.context, dirs);
  }

  async inspectBatch(dir: string, step?: number): Promise<void> {
    const { InspectorPanel } = await import('./inspectorPanel.ts');
    InspectorPanel.createOrShow(this.context, dir, step);
  }

  dispose(): void {
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }
}
