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

/**
 * Watches a panel's webview start. Its script says `ready` as soon as it
 * runs; a webview whose files never arrived stays empty (seen in VS Code for
 * the web under load). When `ready` has not come `timeoutMs` after the
 * webview (re)loaded in view, it is loaded once more and the miss is logged;
 * a second miss is logged as an error, and the page itself says what to do
 * (src/panels/html.ts, bootMessage). A hidden panel's webview is torn down
 * and rebuilt when shown again (retainContextWhenHidden is off), so the watch
 * pauses while hidden and starts over when it shows.
 */
export class WebviewBoot implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private misses = 0;
  private visible: boolean;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly what: string,
    private readonly log: vscode.LogOutputChannel,
    /** Sets the webview's HTML again. */
    private readonly reload: () => void,
    private readonly timeoutMs = 20_000,
  ) {
    this.visible = panel.visible;
    this.subscription = panel.onDidChangeViewState(() => {
      if (panel.visible === this.visible) return;
      this.visible = panel.visible;
      if (panel.visible) this.arm();
      else this.disarm();
    });
  }

  /** The webview was given its HTML (a new run to show, or a first load). */
  loading(): void {
    this.misses = 0;
    this.arm();
  }

  /** The script runs. */
  ready(): void {
    this.disarm();
    if (this.misses > 0) this.log.info(`${this.what}: its webview started after ${this.misses} reload(s).`);
    this.misses = 0;
  }

  dispose(): void {
    this.disarm();
    this.subscription.dispose();
  }

  private arm(): void {
    this.disarm();
    if (this.panel.visible) this.timer = setTimeout(() => this.missed(), this.timeoutMs);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private missed(): void {
    this.timer = undefined;
    this.misses++;
    const seconds = Math.round(this.timeoutMs / 1000);
    if (this.misses === 1) {
      this.log.warn(`${this.what}: its webview's script did not start within ${seconds} s (its files did not arrive); loading it again.`);
      this.reload();
      this.arm();
    } else {
      this.log.error(`${this.what}: its webview's script did not start within ${seconds} s after a reload either. The panel says what to do: close and reopen it, or run Developer: Reload Webviews.`);
    }
  }
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
