/**
 * The HTML of a webview panel: one stylesheet and one script, both served
 * from the extension's dist/webview (asWebviewUri), under a Content Security
 * Policy that allows nothing else — no inline script, no style attributes,
 * no remote content. Images are the host's data: URIs (thumbnails) or its
 * own resources. The script carries the nonce the policy names.
 */
import { randomBytes } from 'node:crypto';

export interface PanelHtmlOptions {
  /** The bundle (asWebviewUri of dist/webview/<panel>.js). */
  scriptUri: string;
  /** Its stylesheet (asWebviewUri of dist/webview/<panel>.css). */
  styleUri: string;
  /** webview.cspSource. */
  cspSource: string;
  /** A fresh nonce per render (`makeNonce`). */
  nonce: string;
  title: string;
  /**
   * After this long without its script having run, the page shows what to do
   * instead of staying blank (see bootMessage). Default 10 s.
   */
  bootTimeoutMs?: number;
}

/**
 * What a panel shows when its script never ran (the page is otherwise empty:
 * the DOM is built by the script). Seen in VS Code for the web when a
 * webview's files did not arrive; a user needs the way out, not a blank tab.
 * Pure HTML and a nonce'd style (no script can be relied on here): hidden at
 * first, shown by a CSS animation once `bootTimeoutMs` passed; the script
 * removes it as its first act (webview/shared/host.ts, connect).
 */
export function bootMessage(title: string): string {
  return `<div id="sift-boot" class="sift-boot" role="alert">
<p><strong>${escapeHtml(title)} did not start:</strong> its script has not run.</p>
<p>Close this tab and open it again. If it stays empty, run <strong>Developer: Reload Webviews</strong> from the Command Palette, and look in the <strong>Sift</strong> output channel (View → Output) for what went wrong.</p>
</div>`;
}

/** 128 random bits, base64: unguessable, as a CSP nonce must be. */
export const makeNonce = (): string => randomBytes(16).toString('base64');

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function contentSecurityPolicy({ cspSource, nonce }: Pick<PanelHtmlOptions, 'cspSource' | 'nonce'>): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    // Stylesheet files only; components' constructed stylesheets and CSSOM
    // writes (element.style.x = …) are not inline styles and stay allowed.
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export function panelHtml(options: PanelHtmlOptions): string {
  if (!/^[A-Za-z0-9+/=]{16,}$/.test(options.nonce)) throw new Error('panelHtml: the nonce must be base64 of at least 12 random bytes (makeNonce()).');
  const attr = escapeHtml;
  const bootDelay = Math.max(0, Math.round(options.bootTimeoutMs ?? 10_000));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(options))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(options.styleUri)}">
<style nonce="${attr(options.nonce)}">
.sift-boot { visibility: hidden; animation: sift-boot-show 0s linear ${bootDelay}ms forwards; padding: 8px 0; max-width: 60em; }
@keyframes sift-boot-show { to { visibility: visible; } }
</style>
<title>${escapeHtml(options.title)}</title>
</head>
<body>
${bootMessage(options.title)}
<div id="app" class="app"></div>
<script nonce="${attr(options.nonce)}" src="${attr(options.scriptUri)}"></script>
</body>
</html>
`;
}
