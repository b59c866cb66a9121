/**
 * Building DOM without HTML strings: every text goes in as textContent, so a
 * caption such as `<img src=x onerror=…>` shows as those characters. Styles
 * are classes; a computed size or position is set through CSSOM
 * (element.style.x = …), which the panels' CSP allows, never a style="…" string.
 */

type Child = Node | string | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  title?: string;
  /** Plain attributes (never `style` or an `on…` handler: those are refused). */
  attrs?: Record<string, string>;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, props?: Props, ...children: Child[]): HTMLElement;
export function h(tag: string, props: Props = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  if (props.class) element.className = props.class;
  if (props.title !== undefined) element.title = props.title;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (name === 'style' || name.toLowerCase().startsWith('on')) throw new Error(`h(): attribute ${name} is not allowed; use classes or CSSOM.`);
    element.setAttribute(name, value);
  }
  if (props.text !== undefined) element.textContent = props.text;
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

export function clear(element: Element): void {
  element.replaceChildren();
}

/** A vscode-single-select with these options (value, label) and the value selected. */
export function select(id: string, options: readonly (readonly [string, string])[], value: string, label: string): HTMLElement {
  const element = h('vscode-single-select', { attrs: { id, 'aria-label': label } });
  for (const [optionValue, optionLabel] of options) {
    const option = h('vscode-option', { text: optionLabel, attrs: { value: optionValue } });
    if (optionValue === value) option.setAttribute('selected', '');
    element.appendChild(option);
  }
  return element;
}

/** Replaces a vscode-single-select's options, keeping `value` selected when it is among them. */
export function setOptions(element: HTMLElement, options: readonly (readonly [string, string])[], value: string): void {
  const fresh = select(element.id, options, value, element.getAttribute('aria-label') ?? '');
  element.replaceChildren(...Array.from(fresh.childNodes));
  (element as HTMLElement & { value: string }).value = value;
}
