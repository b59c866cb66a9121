/**
 * A virtualised grid of fixed-size cards: only the rows in (and just around)
 * the viewport exist in the DOM, positioned with CSSOM transforms, so a batch
 * of thousands of pairs renders and scrolls as fast as a screenful.
 */
import { h } from '../shared/dom';

export interface GridOptions<T> {
  cellWidth: number;
  cellHeight: number;
  gap: number;
  /** Fills a card for an item (the card is reused: set everything). */
  render: (item: T, card: HTMLElement) => void;
  /** A card was activated (click, Enter). */
  open: (item: T) => void;
  /** Rows rendered beyond the viewport on each side. */
  overscan?: number;
}

export class VirtualGrid<T> {
  readonly viewport: HTMLElement;
  private readonly canvas: HTMLElement;
  private items: readonly T[] = [];
  private readonly cards = new Map<number, HTMLElement>();
  private columns = 1;
  private frame = 0;

  constructor(
    label: string,
    private readonly options: GridOptions<T>,
  ) {
    this.canvas = h('div', { class: 'grid-canvas', attrs: { role: 'list', 'aria-label': label } });
    this.viewport = h('div', { class: 'grid-viewport' }, this.canvas);
    this.viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.viewport);
  }

  setItems(items: readonly T[]): void {
    this.items = items;
    for (const card of this.cards.values()) card.remove();
    this.cards.clear();
    this.layout();
  }

  /** Re-fills the cards on screen (their items' data changed: an image arrived). */
  refresh(): void {
    for (const [index, card] of this.cards) this.options.render(this.items[index], card);
  }

  /** Items with a card in the DOM now. */
  visibleItems(): T[] {
    return [...this.cards.keys()].sort((a, b) => a - b).map((index) => this.items[index]);
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.layout();
    });
  }

  /** Places the cards of the rows in view; removes the others. */
  layout(): void {
    const { cellWidth, cellHeight, gap } = this.options;
    const overscan = this.options.overscan ?? 2;
    const width = this.viewport.clientWidth || cellWidth;
    const columns = Math.max(1, Math.floor((width + gap) / (cellWidth + gap)));
    if (columns !== this.columns) {
      this.columns = columns;
      for (const card of this.cards.values()) card.remove();
      this.cards.clear();
    }
    const rows = Math.ceil(this.items.length / columns);
    this.canvas.style.height = `${Math.max(0, rows * (cellHeight + gap) - gap)}px`;
    const rowHeight = cellHeight + gap;
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || rowHeight * 4;
    const firstRow = Math.max(0, Math.floor(top / rowHeight) - overscan);
    const lastRow = Math.min(rows - 1, Math.ceil((top + height) / rowHeight) + overscan);
    const first = firstRow * columns;
    const last = Math.min(this.items.length - 1, (lastRow + 1) * columns - 1);
    for (const [index, card] of this.cards) {
      if (index < first || index > last) {
        card.remove();
        this.cards.delete(index);
      }
    }
    for (let index = first; index <= last; index++) {
      if (this.cards.has(index)) continue;
      const card = h('div', { class: 'card focusable', attrs: { role: 'listitem', tabindex: '0' } });
      card.style.transform = `translate(${(index % columns) * (cellWidth + gap)}px, ${Math.floor(index / columns) * rowHeight}px)`;
      card.style.width = `${cellWidth}px`;
      card.style.height = `${cellHeight}px`;
      const item = this.items[index];
      card.addEventListener('click', () => this.options.open(this.items[index]));
      card.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          this.options.open(this.items[index]);
        }
      });
      this.options.render(item, card);
      this.canvas.appendChild(card);
      this.cards.set(index, card);
    }
  }
}
