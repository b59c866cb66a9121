/**
 * The webview's end of the channel to the extension host: typed posts, the
 * view state VS Code keeps across reloads (getState/setState), and host
 * messages validated before anything acts on them.
 */
import type { Parsed } from '../../src/protocol/check';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export interface HostChannel<Out, State> {
  post(message: Out): void;
  /** The view state saved before a reload, if any (unvalidated: check it before use). */
  savedState(): unknown;
  saveState(state: State): void;
}

export function connect<Out, State>(): HostChannel<Out, State> {
  // The script runs: the page's "did not start" message (src/panels/html.ts) is not needed.
  document.getElementById('sift-boot')?.remove();
  // acquireVsCodeApi may be called once per page load.
  const api = acquireVsCodeApi();
  return {
    post: (message) => api.postMessage(message),
    savedState: () => api.getState(),
    saveState: (state) => api.setState(state),
  };
}

/**
 * Calls `handle` with each host message that validates; a malformed one is
 * reported through `onInvalid` and otherwise ignored.
 */
export function onHostMessage<T>(parse: (value: unknown) => Parsed<T>, handle: (message: T) => void, onInvalid: (problem: string) => void): void {
  window.addEventListener('message', (event: MessageEvent) => {
    const parsed = parse(event.data);
    if (parsed.ok) handle(parsed.message);
    else onInvalid(parsed.problem);
  });
}
