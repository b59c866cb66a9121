/**
 * Just enough of the editor's API for the panels' host classes to run in a
 * plain Node test: importing this module first makes `require('vscode')`
 * answer with the stand-in below, and FakePanel plays a webview panel (what
 * the host posts, what its webview says, the user hiding and showing it).
 */
import Module from 'node:module';
import * as path from 'node:path';
import type * as vscode from 'vscode';

class FakeUri {
  constructor(readonly path: string) {}
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return `file://${this.path}`;
  }
}

const editor = {
  Uri: {
    file: (file: string) => new FakeUri(file),
    joinPath: (base: FakeUri, ...parts: string[]) => new FakeUri(path.posix.join(base.path, ...parts)),
  },
  ViewColumn: { Active: -1, One: 1 },
  window: {
    showErrorMessage: async () => undefined,
    showWarningMessage: async () => undefined,
  },
};

const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string; _cache: Record<string, Module> };
const resolve = loader._resolveFilename;
loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
  return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
};
const stub = new Module('vscode');
stub.exports = editor;
stub.loaded = true;
loader._cache.vscode = stub;

export const fakeUri = (file: string): vscode.Uri => new FakeUri(file) as unknown as vscode.Uri;

const disposable = (dispose: () => void = () => {}): vscode.Disposable => ({ dispose });

/** A webview panel: records what the host posts; `say` is its webview speaking, `show` the user switching tabs. */
export class FakePanel {
  visible = true;
  active = true;
  viewColumn = 1;
  title = '';
  iconPath: unknown;
  readonly posted: { type: string }[] = [];
  private readonly viewStateListeners = new Set<() => void>();
  private receive: (message: unknown) => void = () => {};
  readonly webview = {
    options: {},
    html: '',
    cspSource: 'vscode-resource:',
    asWebviewUri: (uri: vscode.Uri) => uri,
    postMessage: async (message: { type: string }) => {
      this.posted.push(message);
      return true;
    },
    onDidReceiveMessage: (listener: (message: unknown) => void) => {
      this.receive = listener;
      return disposable();
    },
  };

  get panel(): vscode.WebviewPanel {
    return this as unknown as vscode.WebviewPanel;
  }

  onDidChangeViewState(listener: () => void): vscode.Disposable {
    this.viewStateListeners.add(listener);
    return disposable(() => this.viewStateListeners.delete(listener));
  }

  onDidDispose(): vscode.Disposable {
    return disposable();
  }

  reveal(): void {}

  dispose(): void {}

  say(message: unknown): void {
    this.receive(message);
  }

  show(visible: boolean): void {
    this.visible = visible;
    for (const listener of this.viewStateListeners) listener();
  }

  /** The types of the messages posted since the last call. */
  take(): string[] {
    return this.posted.splice(0).map((message) => message.type);
  }
}
