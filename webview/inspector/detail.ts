/**
 * The detail view of one pair: its image large, its caption, its scores (with
 * its rank in the batch), and "why this pair" — its pick logit split into its
 * own score and what the batch-mates drawn before it added, with the top
 * contributors as thumbnails when the step carries exact contributions.
 */
import { detailSize, scoreKeys, thumbnailSize, type PairItem, type ScoreKey, type StepView } from '../../src/protocol/webview';
import { clear, h } from '../shared/dom';
import { score } from '../shared/format';
import type { ImageStore } from './images';

export const scoreLabels: Record<ScoreKey, string> = {
  learnerLoss: 'Learner loss',
  referenceLoss: 'Reference loss',
  learnability: 'Learnability',
  pickLogit: 'Pick logit',
};

/** What each score means, for the cards' and the table's tooltips. */
export const scoreHelp: Record<ScoreKey, string> = {
  learnerLoss: "The pair's own loss under the model being trained",
  referenceLoss: "The pair's own loss under the reference model (trained on curated data)",
  learnability: 'Learner loss − reference loss: high when the learner still gets it wrong but the reference does not',
  pickLogit: 'The logit it was drawn with: its own score plus its batch-mates drawn before it',
};

const ordinal = (n: number): string => {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th';
  return `${n}${suffix}`;
};

export class DetailView {
  readonly dialog: HTMLDialogElement;
  private readonly body: HTMLElement;
  private item: PairItem | undefined;
  private step: StepView | undefined;

  constructor(
    private readonly images: ImageStore,
    private readonly onClose: () => void,
    private readonly onOpenOther: (item: PairItem) => void,
  ) {
    const close = h('vscode-button', { text: 'Close', attrs: { id: 'detail-close', secondary: '' } });
    close.addEventListener('click', () => this.dialog.close());
    this.body = h('div', { class: 'detail-body' });
    this.dialog = h('dialog', { class: 'detail', attrs: { id: 'detail', 'aria-label': 'Pair detail' } }, h('div', { class: 'detail-head' }, h('h2', { text: 'Pair' }), close), this.body) as HTMLDialogElement;
    this.dialog.addEventListener('close', () => {
      this.item = undefined;
      this.onClose();
    });
  }

  get openId(): string | undefined {
    return this.item?.id;
  }

  open(item: PairItem, step: StepView): void {
    this.item = item;
    this.step = step;
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
  }

  /** Re-renders when images arrive or the step's data change. */
  refresh(step?: StepView): void {
    if (!this.item) return;
    if (step) {
      this.step = step;
      const same = [...step.chosen, ...(step.rejected ?? [])].find((other) => other.id === this.item!.id);
      if (!same) {
        this.dialog.close();
        return;
      }
      this.item = same;
    }
    this.render();
  }

  close(): void {
    if (this.dialog.open) this.dialog.close();
  }

  private render(): void {
    const item = this.item!;
    const step = this.step!;
    clear(this.body);

    const image = this.images.get(item.id, detailSize);
    const figure = h('div', { class: 'detail-image' });
    if (image?.uri) figure.append(h('img', { attrs: { src: image.uri, alt: `Image of pair ${item.id}`, width: String(detailSize), height: String(detailSize) } }));
    else figure.append(h('div', { class: 'image-placeholder', text: image?.problem ?? (item.missing ? 'Not in the dataset' : 'Loading…') }));

    const facts = h('div', { class: 'detail-facts' });
    facts.append(h('p', { class: 'detail-caption', text: item.missing ? '(this id is not in the dataset)' : item.caption }));
    const meta: string[] = [`id ${item.id}`];
    if (item.label !== undefined) meta.push(`label ${item.label}`);
    meta.push(item.order >= 0 ? `drawn ${ordinal(item.order + 1)} of ${step.chosen.length}` : 'not picked (rejected candidate)');
    facts.append(h('p', { class: 'muted', text: meta.join(' · ') }));
    if (item.noisy) facts.append(h('p', {}, h('vscode-badge', { text: 'mismatched caption', attrs: { variant: 'counter' } }), ' The data mark this pair as noisy: its caption belongs to another image.'));

    facts.append(this.scoresTable(item, step));
    facts.append(this.why(item, step));
    this.body.append(figure, facts);
  }

  private scoresTable(item: PairItem, step: StepView): HTMLElement {
    const table = h('table', { class: 'data scores-table' });
    table.append(h('thead', {}, h('tr', {}, h('th', { text: 'Score' }), h('th', { class: 'number', text: 'Value' }), h('th', { text: 'Rank in the batch (highest first)' }))));
    const body = h('tbody');
    for (const key of scoreKeys) {
      const value = item.scores[key];
      if (value === undefined) continue;
      const values = step.chosen.map((other) => other.scores[key]).filter((v): v is number => v !== undefined);
      const rank = values.filter((v) => v > value).length + 1;
      body.append(
        h(
          'tr',
          { attrs: { 'data-score': key } },
          h('td', { text: scoreLabels[key], title: scoreHelp[key] }),
          h('td', { class: 'number', text: score(value) }),
          h('td', { class: 'muted', text: item.order >= 0 ? `${ordinal(rank)} of ${values.length}` : '–' }),
        ),
      );
    }
    if (body.childElementCount === 0) body.append(h('tr', {}, h('td', { attrs: { colspan: '3' }, class: 'muted', text: 'This run does not score its batches (uniform): nothing to show.' })));
    table.append(body);
    return table;
  }

  private why(item: PairItem, step: StepView): HTMLElement {
    const section = h('section', { class: 'why', attrs: { id: 'why' } }, h('h3', { text: 'Why this pair' }));
    const split = item.split;
    if (!split) {
      section.append(h('p', { class: 'muted', text: item.order < 0 ? 'It was not picked.' : 'This run picks uniformly at random: no score chose it.' }));
      return section;
    }
    if (split.chunk === 0) {
      section.append(h('p', { text: `Drawn in the first chunk (of ${split.chunks}), by its own score alone: no batch-mate came before it.` }));
    } else {
      section.append(h('p', { text: `Drawn in chunk ${split.chunk + 1} of ${split.chunks}, after ${split.drawnBefore} batch-mates.` }));
    }
    const logit = item.scores.pickLogit;
    const rows: [string, number | undefined, string][] = [
      ['Own score', split.own, 'S_kk: the pair scored alone'],
      ['From batch-mates', split.fromMates, split.exact ? 'Σ (S_ik + S_ki) over the batch-mates drawn before it' : 'inferred: pick logit × scale − own score'],
    ];
    const scaleNote = split.scale !== 1 ? ` ÷ ${split.scale} (mean normalization: 1 + 2 × ${split.drawnBefore} terms)` : '';
    section.append(h('p', { class: 'number', text: `Pick logit ${score(logit)} = (own ${score(split.own)} + batch-mates ${score(split.fromMates)})${scaleNote}` }));
    const magnitude = Math.max(1e-9, ...rows.map(([, v]) => Math.abs(v ?? 0)));
    const bars = h('div', { class: 'split-bars' });
    for (const [label, value, help] of rows) {
      const bar = h('span', { class: `bar ${value !== undefined && value < 0 ? 'negative' : 'positive'}` });
      bar.style.width = `${Math.round((Math.abs(value ?? 0) / magnitude) * 100)}%`;
      bars.append(h('div', { class: 'split-row', title: help }, h('span', { class: 'split-label', text: label }), h('span', { class: 'bar-track' }, bar), h('span', { class: 'number', text: score(value) })));
    }
    section.append(bars);

    const contributions = item.order >= 0 ? step.contributions?.[item.order] : undefined;
    if (contributions) {
      const top = [...contributions.from].sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, 6);
      section.append(h('h3', { text: top.length > 0 ? 'Batch-mates that added the most' : 'No batch-mate came before it' }));
      const list = h('div', { class: 'contributors', attrs: { id: 'contributors' } });
      for (const [position, value] of top) {
        const mate = step.chosen[position];
        if (!mate) continue;
        const thumb = this.images.get(mate.id, thumbnailSize);
        const button = h(
          'button',
          { class: 'contributor', title: mate.caption, attrs: { type: 'button', 'data-id': mate.id } },
          thumb?.uri ? h('img', { attrs: { src: thumb.uri, alt: '', width: '64', height: '64' } }) : h('span', { class: 'image-placeholder small', text: '…' }),
          h('span', { class: `number ${value < 0 ? 'negative' : 'positive'}`, text: `${value >= 0 ? '+' : ''}${score(value)}` }),
          h('span', { class: 'contributor-caption', text: mate.caption }),
        );
        button.addEventListener('click', () => this.onOpenOther(mate));
        list.append(button);
      }
      section.append(list);
      const others = split.drawnBefore - top.length;
      if (others > 0) {
        const listed = contributions.from.reduce((sum, [, value]) => sum + value, 0) - top.reduce((sum, [, value]) => sum + value, 0);
        const rest = listed + (contributions.rest ?? 0);
        section.append(h('p', { class: 'muted', attrs: { id: 'other-mates' }, text: `The other ${others} batch-mates drawn before it added ${rest >= 0 ? '+' : ''}${score(rest)} together.` }));
      }
    } else if (split.chunk > 0) {
      section.append(
        h('p', {
          class: 'muted',
          text: 'Per-batch-mate contributions are not recorded for this step, so the batch-mates’ total is inferred from the pick logit; which of them added most is not known.',
        }),
      );
    }
    return section;
  }
}
