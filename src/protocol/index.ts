/**
 * Every message that crosses a process or webview boundary, one module per
 * channel: `worker` (host ⇄ training worker), `webview` (host ⇄ the
 * dashboard and batch inspector panels) and `notebook` (host ⇄ the notebook
 * renderer, and what a notebook's outputs save). Import from here.
 */
export * from './worker';
export * from './webview';
export * from './notebook';
