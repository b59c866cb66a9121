/**
 * The @vscode-elements components the panels use, each imported alone so a
 * bundle carries only these.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';

/** The value of a vscode-single-select or vscode-textfield. */
export const valueOf = (element: Element): string => (element as Element & { value: string }).value;
export const checkedOf = (element: Element): boolean => (element as Element & { checked: boolean }).checked;
