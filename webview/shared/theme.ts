/**
 * Colours from the editor's theme. VS Code sets --vscode-* variables and a
 * body class (vscode-light, vscode-dark, vscode-high-contrast…) and changes
 * both when the user switches theme; canvases need concrete colours, so they
 * are resolved here and re-resolved on a change.
 */
import { paletteSize } from '../../src/protocol/webview';

/** Run colours: the theme's chart colours first, then terminal colours, all theme-aware. */
const paletteVariables = [
  ['--vscode-charts-blue', '#3794ff'],
  ['--vscode-charts-orange', '#d18616'],
  ['--vscode-charts-green', '#89d185'],
  ['--vscode-charts-red', '#f14c4c'],
  ['--vscode-charts-purple', '#b180d7'],
  ['--vscode-charts-yellow', '#cca700'],
  ['--vscode-terminal-ansiCyan', '#11a8cd'],
  ['--vscode-terminal-ansiMagenta', '#bc3fbc'],
  ['--vscode-terminal-ansiBrightBlue', '#3b8eea'],
  ['--vscode-terminal-ansiBrightGreen', '#23d18b'],
] as const;

if (paletteVariables.length !== paletteSize) throw new Error('theme palette and protocol paletteSize disagree');

let probe: HTMLElement | undefined;

/** A CSS colour expression (var(...) included) as the rgb()/rgba() string a canvas takes. */
export function resolveColor(expression: string): string {
  if (!probe) {
    probe = document.createElement('span');
    probe.className = 'color-probe';
    document.body.appendChild(probe);
  }
  probe.style.color = '';
  probe.style.color = expression;
  return getComputedStyle(probe).color;
}

/** The same colour at `alpha` opacity. */
export function withAlpha(rgb: string, alpha: number): string {
  const parts = rgb.match(/[\d.]+/g);
  if (!parts || parts.length < 3) return rgb;
  return `rgba(${parts[0]}, ${parts[1]}, ${parts[2]}, ${alpha})`;
}

export function rgbOf(color: string): [number, number, number] {
  const parts = color.match(/[\d.]+/g)?.map(Number) ?? [0, 0, 0];
  return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
}

export interface ThemeColors {
  foreground: string;
  muted: string;
  background: string;
  grid: string;
  border: string;
  accent: string;
  highContrast: boolean;
  fontFamily: string;
  run(slot: number): string;
}

export function themeColors(): ThemeColors {
  const palette = paletteVariables.map(([variable, fallback]) => resolveColor(`var(${variable}, ${fallback})`));
  const foreground = resolveColor('var(--vscode-editor-foreground, var(--vscode-foreground, #cccccc))');
  const highContrast = document.body.classList.contains('vscode-high-contrast') || document.body.classList.contains('vscode-high-contrast-light');
  return {
    foreground,
    muted: resolveColor('var(--vscode-descriptionForeground, #999999)'),
    background: resolveColor('var(--vscode-editor-background, #1e1e1e)'),
    grid: withAlpha(foreground, highContrast ? 0.45 : 0.12),
    border: resolveColor('var(--vscode-panel-border, var(--vscode-editorWidget-border, #454545))'),
    accent: resolveColor('var(--vscode-focusBorder, #0078d4)'),
    highContrast,
    fontFamily: getComputedStyle(document.body).fontFamily || 'sans-serif',
    run: (slot) => palette[((slot % paletteSize) + paletteSize) % paletteSize],
  };
}

/** Calls `changed` when the editor's theme changes (its body class or variables). */
export function onThemeChange(changed: () => void): void {
  new MutationObserver(changed).observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
}
