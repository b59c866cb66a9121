/**
 * Every message that crosses a process or webview boundary, one module per
 * channel: `worker` (host ⇄ training worker); the host ⇄ webview messages
 * join as `webview`. Import from here.
 */
export * from './worker';
