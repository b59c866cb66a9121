/**
 * Every message that crosses a process or webview boundary, one module per
 * channel: `worker` (host ⇄ training worker) and `webview` (host ⇄ the
 * dashboard and batch inspector panels). Import from here.
 */
export * from './worker';
export * from './webview';
