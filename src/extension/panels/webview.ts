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

/**
 * A hidden panel's webview is torn down (retainContextWhenHidden is off) and
 * says `ready` again when shown. So a panel posts its live updates (deltas as
 * a run trains) only from its answer to `ready` on, and only while it shows:
 * the editor drops a message to a torn-down webview, but only after it has
 * crossed to the window and been decoded there. At a fast step rate a hidden
 * dashboard's deltas were a few hundred kB a second of such work, and a busy
 * window can hold back a new webview's start (see WebviewBoot).
 */
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
 * runs. Two ways it never does, both seen in VS Code for the web under load:
 * its files never arrive (the page then says what to do itself: html.ts,
 * bootMessage), or the editor's frame around the webview never takes the page
 * in at all, which leaves the tab blank however often the HTML is set again.
 * One cause of the latter is known: the frame takes the page in once the
 * browser has registered the webview's service worker, one registration or
 * update at a time for all webviews. A browser started moments before defers
 * the update it queues after a webview loads until the window has been idle
 * for a second, or for up to a minute while training keeps it busy; a webview
 * opened meanwhile waits, and so would its replacement. So when `ready` has
 * not come `timeoutMs` after the webview (re)loaded in view, the panel is
 * replaced by a fresh one (a new frame) in the same place, and the miss is
 * logged; a replacement that misses too is logged as an error and not
 * replaced again. A hidden panel's webview is torn down and rebuilt when shown
 * again (retainContextWhenHidden is off), so the watch pauses while hidden and
 * starts over when it shows.
 */
export class WebviewBoot implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private visible: boolean;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly what: string,
    private readonly log: vscode.LogOutputChannel,
    /** Disposes this panel and opens a fresh one showing the same thing, marked as a replacement. */
    private readonly replace: () => void,
    /** This panel replaced one whose webview never started. */
    private readonly replacement: boolean,
    private readonly timeoutMs = 12_000,
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
    this.arm();
  }

  /** The script runs. */
  ready(): void {
    if (this.timer && this.replacement) this.log.info(`${this.what}: the new panel's webview started.`);
    this.disarm();
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
    const seconds = Math.round(this.timeoutMs / 1000);
    if (!this.replacement) {
      this.log.warn(`${this.what}: its webview's script did not start within ${seconds} s; replacing the panel with a new one.`);
      this.replace();
    } else {
      this.log.error(`${this.what}: the webview of a new panel did not start within ${seconds} s either. Close the tab and open it again, or run Developer: Reload Webviews.`);
    }
  }
}

/** Where a panel that replaces `panel` opens: its column, with focus only when it had it. */
export function replacementPlace(panel: vscode.WebviewPanel): { viewColumn: vscode.ViewColumn; preserveFocus: boolean } {
  return { viewColumn: panel.viewColumn ?? vscode.ViewColumn.Active, preserveFocus: !panel.active };
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
