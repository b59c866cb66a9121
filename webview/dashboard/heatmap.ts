/**
 * Learnability over time: the super-batch's score distribution per step
 * range (the pool) beside the distribution of the pairs picked from it, on the
 * same axes. A column is a step range, a row a score bin; brightness is the
 * share of the column in that bin. Hovering reads a cell out; a click opens
 * the batch inspector at that step.
 */
import type { Heatmap } from '../../src/protocol/webview';
import { h } from '../shared/dom';
import { percent, score } from '../shared/format';
import { rgbOf, withAlpha, type ThemeColors } from '../shared/theme';

const height = 180;

interface Panel {
  figure: HTMLElement;
  canvas: HTMLCanvasElement;
  yHi: HTMLElement;
  yLo: HTMLElement;
  xLo: HTMLElement;
  xHi: HTMLElement;
}

export class HeatmapView {
  readonly element: HTMLElement;
  private readonly pool: Panel;
  private readonly picked: Panel;
  private readonly readout: HTMLElement;
  private readonly empty: HTMLElement;
  private heatmap: Heatmap | null = null;
  private colors: ThemeColors | undefined;

  constructor(private readonly onInspect: (run: string, step: number) => void) {
    this.pool = this.panel('Super-batch (all candidates scored)');
    this.picked = this.panel('Picked (the trained sub-batch)');
    this.readout = h('div', { class: 'readout muted number', text: 'Hover a cell to read it; click to open the batch inspector at that step.' });
    this.empty = h('div', { class: 'empty' });
    this.element = h('div', { class: 'heatmaps' }, h('div', { class: 'heatmap-pair' }, this.pool.figure, this.picked.figure), this.readout, this.empty);
  }

  set(heatmap: Heatmap | null, colors: ThemeColors, emptyText: string): void {
    this.heatmap = heatmap;
    this.colors = colors;
    this.element.classList.toggle('is-empty', heatmap === null);
    this.empty.textContent = heatmap === null ? emptyText : '';
    this.draw();
  }

  draw(): void {
    const { heatmap, colors } = this;
    if (!heatmap || !colors) return;
    this.paint(this.pool, heatmap, heatmap.pool, colors.run(0), colors);
    this.paint(this.picked, heatmap, heatmap.selected, colors.run(1), colors);
  }

  private panel(title: string): Panel {
    const canvas = h('canvas', { class: 'heatmap-canvas focusable', attrs: { tabindex: '0', role: 'img', 'aria-label': title } });
    const yHi = h('span', { class: 'number' });
    const yLo = h('span', { class: 'number' });
    const xLo = h('span', { class: 'number' });
    const xHi = h('span', { class: 'number' });
    const figure = h(
      'figure',
      { class: 'heatmap' },
      h('figcaption', { text: title }),
      h('div', { class: 'heatmap-body' }, h('div', { class: 'heatmap-y muted' }, yHi, h('span', { class: 'axis-name', text: 'learnability' }), yLo), canvas),
      h('div', { class: 'heatmap-x muted' }, xLo, h('span', { class: 'axis-name', text: 'step' }), xHi),
    );
    canvas.addEventListener('mousemove', (event) => this.hover(canvas, event));
    canvas.addEventListener('mouseleave', () => (this.readout.textContent = ' '));
    canvas.addEventListener('click', (event) => {
      const cell = this.cellAt(canvas, event);
      if (cell && this.heatmap) this.onInspect(this.heatmap.run, this.heatmap.stepHi[cell.column]);
    });
    return { figure, canvas, yHi, yLo, xLo, xHi };
  }

  private paint(panel: Panel, heatmap: Heatmap, values: readonly number[], color: string, colors: ThemeColors): void {
    const columns = heatmap.stepLo.length;
    const rows = heatmap.rows;
    const { canvas } = panel;
    const cssWidth = Math.max(120, canvas.parentElement?.clientWidth ? canvas.parentElement.clientWidth - 50 : 300);
    const ratio = window.devicePixelRatio || 1;
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${height}px`;
    canvas.width = Math.round(cssWidth * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = colors.background;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (columns === 0) return;

    // Cells at their own resolution, then scaled up without smoothing.
    let max = 0;
    for (const v of values) if (v > max) max = v;
    const image = new ImageData(columns, rows);
    const [br, bg, bb] = rgbOf(colors.background);
    const [cr, cg, cb] = rgbOf(color);
    for (let c = 0; c < columns; c++) {
      for (let r = 0; r < rows; r++) {
        const t = max > 0 ? Math.sqrt(values[c * rows + r] / max) : 0;
        const o = ((rows - 1 - r) * columns + c) * 4;
        image.data[o] = br + (cr - br) * t;
        image.data[o + 1] = bg + (cg - bg) * t;
        image.data[o + 2] = bb + (cb - bb) * t;
        image.data[o + 3] = 255;
      }
    }
    const cells = document.createElement('canvas');
    cells.width = columns;
    cells.height = rows;
    cells.getContext('2d')!.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cells, 0, 0, canvas.width, canvas.height);

    // Zero learnability: as hard for the learner as for the reference.
    const { scoreLo, scoreHi } = heatmap;
    if (scoreLo < 0 && scoreHi > 0) {
      const y = canvas.height * (1 - (0 - scoreLo) / (scoreHi - scoreLo));
      ctx.strokeStyle = withAlpha(colors.foreground, 0.6);
      ctx.setLineDash([4 * ratio, 4 * ratio]);
      ctx.lineWidth = ratio;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(canvas.width, y);
      ctx.stroke();
    }
    panel.yHi.textContent = score(scoreHi);
    panel.yLo.textContent = score(scoreLo);
    panel.xLo.textContent = String(heatmap.stepLo[0]);
    panel.xHi.textContent = String(heatmap.stepHi[columns - 1]);
  }

  private cellAt(canvas: HTMLCanvasElement, event: MouseEvent): { column: number; row: number } | undefined {
    const heatmap = this.heatmap;
    if (!heatmap || heatmap.stepLo.length === 0) return undefined;
    const box = canvas.getBoundingClientRect();
    const column = Math.floor(((event.clientX - box.left) / box.width) * heatmap.stepLo.length);
    const row = heatmap.rows - 1 - Math.floor(((event.clientY - box.top) / box.height) * heatmap.rows);
    if (column < 0 || column >= heatmap.stepLo.length || row < 0 || row >= heatmap.rows) return undefined;
    return { column, row };
  }

  private hover(canvas: HTMLCanvasElement, event: MouseEvent): void {
    const cell = this.cellAt(canvas, event);
    const heatmap = this.heatmap;
    if (!cell || !heatmap) return;
    const { column, row } = cell;
    const binWidth = (heatmap.scoreHi - heatmap.scoreLo) / heatmap.rows;
    const lo = heatmap.scoreLo + row * binWidth;
    const steps = heatmap.stepLo[column] === heatmap.stepHi[column] ? `step ${heatmap.stepLo[column]}` : `steps ${heatmap.stepLo[column]}–${heatmap.stepHi[column]}`;
    const at = column * heatmap.rows + row;
    this.readout.textContent = `${steps} · learnability ${score(lo)} to ${score(lo + binWidth)}: ${percent(heatmap.pool[at])} of the super-batch, ${percent(heatmap.selected[at])} of the picks`;
  }
}
