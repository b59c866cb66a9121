/**
 * The part of the editor's notebook renderer API this renderer uses (the
 * `vscode-notebook-renderer` module's types, declared here rather than added
 * as a dependency for a dozen lines).
 */

export interface OutputItem {
  /** The output's id: stable while the output lives, the same when its data is replaced. */
  readonly id: string;
  readonly mime: string;
  json(): unknown;
  text(): string;
}

export interface Disposable {
  dispose(): void;
}

export interface RendererContext {
  /** Present when the renderer declares `requiresMessaging` and the host listens. */
  postMessage?(message: unknown): void;
  onDidReceiveMessage?: (listener: (message: unknown) => void) => Disposable;
  readonly workspace: { readonly isTrusted: boolean };
}

export interface RendererApi {
  /** Draws `item` into `element`; called again with the same element when the output's data is replaced. */
  renderOutputItem(item: OutputItem, element: HTMLElement, signal: AbortSignal): void | Promise<void>;
  /** The output is gone; without an id, every output is. */
  disposeOutputItem?(id?: string): void;
}

export type ActivationFunction = (context: RendererContext) => RendererApi | Promise<RendererApi>;
