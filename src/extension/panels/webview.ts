/**
 * What both panels share: the webview's options (scripts on, resources only
 * from dist/webview), its HTML (src/panels/html.ts: one script and one
 * stylesheet through asWebviewUri, under a CSP with a fresh nonce), and the
 * dependencies a panel is built with.
 */
import * as vscode from 'vscode';
import { makeNonce, panelHtml } from '../../panels/html';
import type { RunManager } from '../runManager';

export interface PanelContext {
  extensionUri: vscode.Uri;
  manager: RunManager;
  log: vscode.LogOutputChannel;
  /** Folders a run's relative data path is resolved against. */
  workspaceFolders: () => string[];
}

/** The only folder a panel's webview may load from. */
export const webviewRoot = (extensionUri: vscode.Uri): vscode.Uri => vscode.Uri.joinPath(extensionUri, 'dist', 'webview');

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return { enableScripts: true, retainContextWhenHidden: false, localResourceRoots: [webviewRoot(extensionUri)] };
}

/** Sets the panel's options and HTML: the webview (re)loads and will send `ready`. */
export function loadWebview(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, bundle: 'dashboard' | 'inspector', title: string): void {
  const root = webviewRoot(extensionUri);
  panel.webview.options = { enableScripts: true, localResourceRoots: [root] };
  panel.webview.html = panelHtml({
    scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(root, `${bundle}.js`)).toString(),
    styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(root, `${bundle}.css`)).toString(),
    cspSource: panel.webview.cspSource,
    nonce: makeNonce(),
    title,
  });
}

/** Writes what a webview exported (CSV, PNG) where the user chooses: webviews never download (STYLE.md, habit 9). */
export async function saveExport(suggestedName: string, contents: Uint8Array, filters: Record<string, string[]>, workspace: string | undefined): Promise<{ ok: boolean; path?: string; cancelled?: boolean; message?: string }> {
  const defaultUri = workspace ? vscode.Uri.joinPath(vscode.Uri.file(workspace), suggestedName) : undefined;
  const target = await vscode.window.showSaveDialog({ defaultUri, filters, saveLabel: 'Export' });
  if (!target) return { ok: false, cancelled: true };
  try {
    await vscode.workspace.fs.writeFile(target, contents);
    return { ok: true, path: target.fsPath };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}
