import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { contentSecurityPolicy, makeNonce, panelHtml } from '../../src/panels/html';
import {
  defaultDashboardView,
  defaultInspectorView,
  parseDashboardHostMessage,
  parseDashboardWebviewMessage,
  parseInspectorHostMessage,
  parseInspectorWebviewMessage,
  webviewProtocolVersion,
} from '../../src/protocol/webview';

describe('panelHtml', () => {
  const nonce = makeNonce();
  const html = panelHtml({ scriptUri: 'vscode-resource://ext/dist/webview/dashboard.js', styleUri: 'vscode-resource://ext/dist/webview/dashboard.css', cspSource: 'vscode-resource:', nonce, title: 'Runs <&> "x"' });

  test('a CSP that allows the nonce-d script and the extension stylesheet only', () => {
    const csp = contentSecurityPolicy({ cspSource: 'vscode-resource:', nonce });
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, new RegExp(`script-src 'nonce-${nonce.replace(/[+/=]/g, '\\$&')}'`));
    assert.match(csp, /img-src vscode-resource: data:/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.ok(html.includes(`<script nonce="${nonce}" src="vscode-resource://ext/dist/webview/dashboard.js"></script>`));
    assert.ok(html.includes('<link rel="stylesheet" href="vscode-resource://ext/dist/webview/dashboard.css">'));
  });

  test('no inline script, one nonce-d style (the boot message), and the title escaped', () => {
    assert.doesNotMatch(html, /style=|onload=|onerror=/i);
    assert.equal((html.match(/<script/g) ?? []).length, 1);
    assert.deepEqual(html.match(/<style[^>]*>/g), [`<style nonce="${nonce}">`]);
    assert.ok(html.includes('<title>Runs &lt;&amp;&gt; &quot;x&quot;</title>'));
  });

  test('says what to do if its script never runs, naming the panel', () => {
    assert.match(html, /<div id="sift-boot"[^>]*role="alert">/);
    assert.match(html, /Runs &lt;&amp;&gt; &quot;x&quot; did not start/);
    assert.match(html, /Developer: Reload Webviews/);
    assert.match(html, /animation: sift-boot-show 0s linear 10000ms forwards/);
  });

  test('refuses a weak nonce; nonces differ', () => {
    assert.throws(() => panelHtml({ scriptUri: 'a', styleUri: 'b', cspSource: 'c', nonce: 'abc', title: 't' }), /nonce/);
    assert.notEqual(makeNonce(), makeNonce());
  });
});

describe('webview messages', () => {
  test('the handshakes validate; an old protocol version is refused with the fix', () => {
    assert.ok(parseDashboardWebviewMessage({ type: 'ready', payload: { protocol: webviewProtocolVersion, view: defaultDashboardView } }).ok);
    assert.ok(parseInspectorWebviewMessage({ type: 'ready', payload: { protocol: webviewProtocolVersion, view: defaultInspectorView } }).ok);
    const old = parseDashboardWebviewMessage({ type: 'ready', payload: { protocol: 0, view: defaultDashboardView } });
    assert.ok(!old.ok && /reload the window/.test(old.problem));
  });

  test('a wrong field is named', () => {
    const bad = parseDashboardWebviewMessage({ type: 'view', payload: { view: { ...defaultDashboardView, xAxis: 'epochs' } } });
    assert.ok(!bad.ok);
    assert.match(bad.problem, /"xAxis" is "epochs"; expected one of step, examples_seen/);
    const smoothing = parseDashboardWebviewMessage({ type: 'view', payload: { view: { ...defaultDashboardView, smoothing: 1 } } });
    assert.ok(!smoothing.ok && /smoothing/.test(smoothing.problem));
    const unknown = parseInspectorWebviewMessage({ type: 'shell', payload: {} });
    assert.ok(!unknown.ok && /unknown message type "shell"/.test(unknown.problem));
    assert.ok(!parseInspectorWebviewMessage('ready').ok);
    assert.ok(!parseInspectorWebviewMessage({ type: 'images', payload: { ids: Array(300).fill('1'), size: 96 } }).ok, 'too many ids');
    assert.ok(!parseDashboardWebviewMessage({ type: 'export-png', payload: { suggestedName: 'a.png', pngBase64: '<svg>' } }).ok);
  });

  test('chart columns must match the bucket count; patches their span', () => {
    const series = { run: 'a', min: [1, null], max: [1, null], last: [1, null], mean: [1, null], n: [1, 0] };
    const chart = { metric: 'loss', grid: { lo: 0, width: 1, log: false }, count: 2, series: [series] };
    assert.ok(parseDashboardHostMessage({ type: 'charts', payload: { xAxis: 'step', logX: false, charts: [chart] } }).ok);
    const short = parseDashboardHostMessage({ type: 'charts', payload: { xAxis: 'step', logX: false, charts: [{ ...chart, count: 3 }] } });
    assert.ok(!short.ok && /charts\[0\]\.series\[0\]/.test(short.problem));
    assert.ok(parseDashboardHostMessage({ type: 'delta', payload: { patches: [{ metric: 'loss', from: 1, count: 3, series: [series] }] } }).ok);
    assert.ok(!parseDashboardHostMessage({ type: 'delta', payload: { patches: [{ metric: 'loss', from: 1, count: 2, series: [series] }] } }).ok);
  });

  test('images must be PNG data URIs; contributions must point at picks', () => {
    assert.ok(!parseInspectorHostMessage({ type: 'images', payload: { size: 96, images: [{ id: '1', uri: 'javascript:alert(1)' }] } }).ok);
    const step = { run: 'r', step: 1, chosen: [{ id: '1', caption: 'c', order: 0, scores: {} }], rejected: null };
    assert.ok(parseInspectorHostMessage({ type: 'step', payload: step }).ok);
    assert.ok(!parseInspectorHostMessage({ type: 'step', payload: { ...step, contributions: [{ own: 1, from: [[3, 1]] }] } }).ok);
  });
});
