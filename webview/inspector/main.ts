/**
 * The batch inspector webview: for one run and one step, the image-caption
 * pairs the selector picked (and, where the run records them, the super-batch
 * candidates it rejected), as a sortable, filterable grid of cards; a click
 * opens a pair's detail and why it was picked. The host sends the run's
 * steps and one step at a time; images come on request, by id.
 */
import '../shared/elements';
import '../shared/base.css';
import './inspector.css';
import {
  defaultInspectorView,
  parseInspectorHostMessage,
  parseInspectorWebviewMessage,
  scoreKeys,
  thumbnailSize,
  webviewProtocolVersion,
  type InspectorHostMessage,
  type InspectorRun,
  type InspectorState,
  type InspectorView,
  type InspectorWebviewMessage,
  type PairItem,
  type ScoreKey,
  type StepView,
} from '../../src/protocol/webview';
import { connect, onHostMessage } from '../shared/host';
import { append, clear, h, select } from '../shared/dom';
import { checkedOf, valueOf } from '../shared/elements';
import { percent, score } from '../shared/format';
import { onThemeChange, rgbOf, themeColors, withAlpha } from '../shared/theme';
import { DetailView, scoreHelp, scoreLabels } from './detail';
import { VirtualGrid } from './grid';
import { ImageStore } from './images';

const host = connect<InspectorWebviewMessage, InspectorState>();

function restoredView(): InspectorView {
  const saved = host.savedState() as { view?: unknown } | undefined;
  const parsed = parseInspectorWebviewMessage({ type: 'ready', payload: { protocol: webviewProtocolVersion, view: saved?.view } });
  return parsed.ok && parsed.message.type === 'ready' ? parsed.message.payload.view : { ...defaultInspectorView };
}

let view = restoredView();
let run: InspectorRun | undefined;
let stepRanges: [number, number][] = [];
let live = false;
let current: StepView | undefined;

const images = new ImageStore((ids, size) => host.post({ type: 'images', payload: { ids, size } }));

// ---- layout --------------------------------------------------------------------

const title = h('h1', { text: 'Batch inspector' });
const runLine = h('p', { class: 'muted', attrs: { id: 'run-line' } });
const prev = h('vscode-button', { text: '◀', title: 'Previous step', attrs: { id: 'prev', secondary: '', 'aria-label': 'Previous step' } });
const next = h('vscode-button', { text: '▶', title: 'Next step', attrs: { id: 'next', secondary: '', 'aria-label': 'Next step' } });
const slider = h('input', { attrs: { id: 'step-slider', type: 'range', min: '0', max: '0', step: '1', 'aria-label': 'Step' } });
const stepInput = h('vscode-textfield', { attrs: { id: 'step-input', 'aria-label': 'Step number', size: '8' } });
const latest = h('vscode-button', { text: 'Latest', attrs: { id: 'latest', secondary: '' } });
const follow = h('vscode-checkbox', { attrs: { id: 'follow', label: 'Follow live' } });
if (view.follow) follow.setAttribute('checked', '');
const stepInfo = h('p', { class: 'step-info', attrs: { id: 'step-info' } });
const notice = h('div', { class: 'notice hidden', attrs: { id: 'notice', role: 'status' } });

const sortOptions = [['order', 'Draw order'], ...scoreKeys.map((key) => [key, scoreLabels[key]] as const)] as const;
const sortKey = select('sort-key', sortOptions, view.sort.key, 'Sort by');
const sortDirection = h('vscode-button', { attrs: { id: 'sort-dir', secondary: '' } });
const filterKey = select('filter-key', [['', 'No score filter'], ...scoreKeys.map((key) => [key, scoreLabels[key]] as const)], view.filter.key ?? '', 'Filter by score');
const filterMin = h('vscode-textfield', { attrs: { id: 'filter-min', placeholder: 'min', size: '6', 'aria-label': 'Minimum' } });
const filterMax = h('vscode-textfield', { attrs: { id: 'filter-max', placeholder: 'max', size: '6', 'aria-label': 'Maximum' } });
const filterText = h('vscode-textfield', { attrs: { id: 'filter-text', placeholder: 'caption contains…', 'aria-label': 'Caption contains' } });
if (view.filter.min !== null) filterMin.setAttribute('value', String(view.filter.min));
if (view.filter.max !== null) filterMax.setAttribute('value', String(view.filter.max));
if (view.filter.text) filterText.setAttribute('value', view.filter.text);
const shownCount = h('span', { class: 'muted', attrs: { id: 'shown-count' } });

const cardWidth = 184;
const cardHeight = 252;

const chosenGrid = new VirtualGrid<PairItem>('Picked pairs', { cellWidth: cardWidth, cellHeight: cardHeight, gap: 10, render: renderCard, open: openDetail });
const rejectedGrid = new VirtualGrid<PairItem>('Rejected candidates', { cellWidth: cardWidth, cellHeight: cardHeight, gap: 10, render: renderCard, open: openDetail });
const chosenHead = h('h2', { attrs: { id: 'chosen-head' } });
const rejectedHead = h('h2', { text: 'Rejected candidates' });
const rejectedBody = h('div', { class: 'rejected-body', attrs: { id: 'rejected' } });
const detail = new DetailView(
  images,
  () => {
    view = { ...view, detail: null };
    saveView();
  },
  (item) => openDetail(item),
);

const app = document.getElementById('app')!;
app.append(
  title,
  runLine,
  h(
    'div',
    { class: 'toolbar', attrs: { role: 'group', 'aria-label': 'Step' } },
    h('div', { class: 'field' }, prev, slider, next),
    h('div', { class: 'field' }, h('span', { class: 'label', text: 'Step' }), stepInput),
    latest,
    follow,
  ),
  stepInfo,
  notice,
  h(
    'div',
    { class: 'toolbar', attrs: { role: 'group', 'aria-label': 'Sort and filter' } },
    h('div', { class: 'field' }, h('span', { class: 'label', text: 'Sort by' }), sortKey, sortDirection),
    h('div', { class: 'field' }, h('span', { class: 'label', text: 'Filter' }), filterKey, filterMin, filterMax),
    filterText,
    shownCount,
  ),
  h(
    'div',
    { class: 'columns' },
    h('section', { class: 'column chosen' }, chosenHead, chosenGrid.viewport),
    h('section', { class: 'column rejected' }, rejectedHead, rejectedBody),
  ),
  detail.dialog,
);

// ---- view state ----------------------------------------------------------------------

function saveView(): void {
  host.saveState({ view, runDir: run?.dir ?? null });
}

function sortLabel(): string {
  return view.sort.descending ? '↓ Descending' : '↑ Ascending';
}
sortDirection.textContent = sortLabel();

function numberOrNull(element: Element): number | null {
  const text = valueOf(element).trim();
  if (text === '') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

sortKey.addEventListener('change', () => {
  view = { ...view, sort: { ...view.sort, key: valueOf(sortKey) as ScoreKey | 'order' } };
  saveView();
  renderGrids();
});
sortDirection.addEventListener('click', () => {
  view = { ...view, sort: { ...view.sort, descending: !view.sort.descending } };
  sortDirection.textContent = sortLabel();
  saveView();
  renderGrids();
});
const filterChanged = (): void => {
  view = { ...view, filter: { key: (valueOf(filterKey) || null) as ScoreKey | null, min: numberOrNull(filterMin), max: numberOrNull(filterMax), text: valueOf(filterText) } };
  saveView();
  renderGrids();
};
filterKey.addEventListener('change', filterChanged);
for (const field of [filterMin, filterMax, filterText]) field.addEventListener('input', filterChanged);

// ---- steps --------------------------------------------------------------------------------

const stepCount = (): number => stepRanges.reduce((sum, [lo, hi]) => sum + hi - lo + 1, 0);

function stepAt(index: number): number | undefined {
  let rest = index;
  for (const [lo, hi] of stepRanges) {
    if (rest <= hi - lo) return lo + rest;
    rest -= hi - lo + 1;
  }
  return undefined;
}

/** Index of the step, or of the nearest recorded one before it. */
function indexOf(step: number): number {
  let index = 0;
  for (const [lo, hi] of stepRanges) {
    if (step < lo) return Math.max(0, index - 1);
    if (step <= hi) return index + step - lo;
    index += hi - lo + 1;
  }
  return Math.max(0, index - 1);
}

function requestStep(step: number | null): void {
  view = { ...view, step };
  saveView();
  host.post({ type: 'select-step', payload: { step } });
}

function setFollow(on: boolean): void {
  view = { ...view, follow: on };
  saveView();
  host.post({ type: 'follow', payload: { on } });
  if (on) requestStep(null);
}

let sliderTimer: ReturnType<typeof setTimeout> | undefined;
slider.addEventListener('input', () => {
  const step = stepAt(Number(slider.value));
  if (step === undefined) return;
  (stepInput as HTMLElement & { value: string }).value = String(step);
  if (view.follow) {
    follow.removeAttribute('checked');
    (follow as HTMLElement & { checked: boolean }).checked = false;
    setFollow(false);
  }
  clearTimeout(sliderTimer);
  sliderTimer = setTimeout(() => requestStep(step), 80);
});
const stepBy = (delta: number): void => {
  const index = Math.min(stepCount() - 1, Math.max(0, indexOf(current?.step ?? 0) + delta));
  const step = stepAt(index);
  if (step !== undefined) requestStep(step);
};
prev.addEventListener('click', () => stepBy(-1));
next.addEventListener('click', () => stepBy(1));
stepInput.addEventListener('change', () => {
  const step = numberOrNull(stepInput);
  if (step === null || step < 0 || !Number.isInteger(step)) {
    showNotice('warning', `Enter a whole step number${stepRanges.length > 0 ? ` from ${stepRanges[0][0]} to ${stepRanges[stepRanges.length - 1][1]}` : ''}.`);
    return;
  }
  requestStep(step);
});
latest.addEventListener('click', () => requestStep(null));
follow.addEventListener('change', () => setFollow(checkedOf(follow)));

function renderSteps(): void {
  const count = stepCount();
  slider.max = String(Math.max(0, count - 1));
  slider.disabled = count <= 1;
  if (current) slider.value = String(indexOf(current.step));
  latest.toggleAttribute('disabled', count === 0);
  follow.toggleAttribute('disabled', !live && !view.follow);
  if (run) runLine.textContent = `${run.label} · ${run.method} · ${live ? 'training' : run.status} · data ${run.dataset} · ${count} step${count === 1 ? '' : 's'} recorded`;
}

// ---- cards ------------------------------------------------------------------------------------

function showNotice(level: 'info' | 'warning' | 'error', message: string): void {
  notice.className = `notice ${level}`;
  notice.textContent = message;
}

function renderCard(item: PairItem, card: HTMLElement): void {
  clear(card);
  card.dataset.id = item.id;
  card.classList.toggle('noisy', item.noisy === true);
  card.classList.toggle('rejected', item.order < 0);
  const image = item.missing ? undefined : images.get(item.id, thumbnailSize);
  const thumb = image?.uri
    ? h('img', { class: 'thumb', attrs: { src: image.uri, alt: '', width: String(thumbnailSize), height: String(thumbnailSize), draggable: 'false' } })
    : h('div', { class: 'thumb image-placeholder', text: item.missing ? 'not in the dataset' : (image?.problem ?? '') });
  const badges = h('div', { class: 'badges' });
  if (item.order >= 0) badges.append(h('span', { class: 'order number', text: `#${item.order + 1}`, title: 'Draw order' }));
  if (item.noisy) badges.append(h('span', { class: 'noisy-badge', text: 'mismatched', title: 'The data mark this caption as belonging to another image' }));
  const scores = h('dl', { class: 'scores' });
  for (const key of scoreKeys) {
    const value = item.scores[key];
    if (value === undefined) continue;
    scores.append(h('dt', { text: shortLabels[key], title: scoreHelp[key] }), h('dd', { class: `number${key === view.sort.key ? ' sorted' : ''}`, text: score(value) }));
  }
  append(
    card,
    h('div', { class: 'card-top' }, thumb, badges),
    h('p', { class: 'caption', text: item.missing ? `id ${item.id}` : item.caption, title: item.caption }),
    item.label !== undefined ? h('p', { class: 'label muted', text: item.label }) : null,
    scores,
  );
  card.setAttribute('aria-label', `${item.order >= 0 ? `Pick ${item.order + 1}` : 'Rejected'}: ${item.caption}`);
}

const shortLabels: Record<ScoreKey, string> = { learnerLoss: 'learner', referenceLoss: 'reference', learnability: 'learnability', pickLogit: 'pick logit' };

function sortedFiltered(items: readonly PairItem[]): PairItem[] {
  const { sort, filter } = view;
  const text = filter.text.trim().toLowerCase();
  const kept = items.filter((item) => {
    if (text && !item.caption.toLowerCase().includes(text)) return false;
    if (filter.key) {
      const value = item.scores[filter.key];
      if (value === undefined) return false;
      if (filter.min !== null && value < filter.min) return false;
      if (filter.max !== null && value > filter.max) return false;
    }
    return true;
  });
  const keyOf = (item: PairItem): number => (sort.key === 'order' ? item.order : (item.scores[sort.key] ?? -Infinity));
  return kept.sort((a, b) => (sort.descending ? keyOf(b) - keyOf(a) : keyOf(a) - keyOf(b)) || a.order - b.order);
}

function renderGrids(): void {
  if (!current) {
    chosenHead.textContent = 'Picked pairs';
    chosenGrid.setItems([]);
    shownCount.textContent = '';
    return;
  }
  const chosen = sortedFiltered(current.chosen);
  chosenHead.textContent = `Picked (${current.chosen.length})`;
  chosenGrid.setItems(chosen);
  shownCount.textContent = `Showing ${chosen.length} of ${current.chosen.length} picks`;
  renderRejected();
}

function renderRejected(): void {
  clear(rejectedBody);
  if (!current) return;
  if (current.rejected) {
    rejectedHead.textContent = `Rejected candidates (${current.rejected.length})`;
    rejectedGrid.setItems(sortedFiltered(current.rejected));
    rejectedBody.append(rejectedGrid.viewport);
    return;
  }
  rejectedHead.textContent = 'Rejected candidates';
  const candidates = current.candidates;
  const summary = candidates !== undefined ? ` The other ${candidates - current.chosen.length} of the ${candidates} candidates scored at this step are summarised by the histogram below.` : '';
  const every = run?.superBatchEvery ?? 0;
  const note = h('p', { class: 'not-recorded', attrs: { id: 'not-recorded' } });
  if (every > 0) {
    note.append(h('strong', { text: 'Not recorded at this step. ' }), `This run keeps the whole super-batch every ${every} steps (the superBatchEvery setting).${summary}`);
    const nearest = nearestRecordedStep(current.step, every);
    if (nearest !== undefined) {
      const go = h('vscode-button', { text: `Show step ${nearest}`, attrs: { id: 'show-recorded', secondary: '' } });
      go.addEventListener('click', () => {
        if (view.follow) setFollow(false);
        requestStep(nearest);
      });
      note.append(' ', go);
    }
  } else if (run && !run.scored) {
    note.append(h('strong', { text: 'None: ' }), 'this run draws its batches uniformly, so no candidates were scored or rejected.');
  } else {
    note.append(h('strong', { text: 'Not recorded for this run. ' }), `It kept the picks of each step only (superBatchEvery 0, or a run from before that setting).${summary}`);
  }
  rejectedBody.append(note);
  if (current.poolHist) rejectedBody.append(poolHistogram(current));
}

/** The recorded step nearest to `step` (the earlier one on a tie) that keeps its whole super-batch. */
function nearestRecordedStep(step: number, every: number): number | undefined {
  let best: number | undefined;
  for (const [lo, hi] of stepRanges) {
    for (let s = Math.ceil(lo / every) * every; s <= hi; s += every) {
      if (s > 0 && (best === undefined || Math.abs(s - step) < Math.abs(best - step))) best = s;
    }
  }
  return best;
}

/** The super-batch's learnability histogram with the picks' values marked beneath it. */
function poolHistogram(step: StepView): HTMLElement {
  const hist = step.poolHist!;
  const canvas = h('canvas', { class: 'pool-hist', attrs: { role: 'img', 'aria-label': 'Learnability of the super-batch, and of the picks' } });
  const figure = h(
    'figure',
    { class: 'pool-figure' },
    h('figcaption', { text: 'Learnability: the whole super-batch (bars) and the picks (ticks)' }),
    canvas,
    h('div', { class: 'hist-axis muted number' }, h('span', { text: score(hist.lo) }), h('span', { text: score(hist.hi) })),
    step.poolNoisy !== undefined ? h('p', { class: 'muted', text: `${percent(step.poolNoisy)} of the super-batch is known to be noisy; ${step.chosen.filter((p) => p.noisy).length} of ${step.chosen.length} picks are.` }) : null,
  );
  requestAnimationFrame(() => drawHistogram(canvas, step));
  return figure;
}

function drawHistogram(canvas: HTMLCanvasElement, step: StepView): void {
  const hist = step.poolHist!;
  const colors = themeColors();
  const width = Math.max(160, canvas.parentElement?.clientWidth ?? 260);
  const height = 120;
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d')!;
  ctx.scale(ratio, ratio);
  const max = Math.max(1, ...hist.counts);
  const barWidth = width / hist.counts.length;
  const plotHeight = height - 22;
  ctx.fillStyle = withAlpha(colors.run(0), 0.7);
  hist.counts.forEach((count, i) => {
    const barHeight = (count / max) * plotHeight;
    ctx.fillRect(i * barWidth + 1, plotHeight - barHeight, Math.max(1, barWidth - 2), barHeight);
  });
  const [r, g, b] = rgbOf(colors.run(1));
  ctx.strokeStyle = `rgb(${r}, ${g}, ${b})`;
  ctx.lineWidth = 2;
  const span = hist.hi - hist.lo || 1;
  for (const pair of step.chosen) {
    const value = pair.scores.learnability;
    if (value === undefined) continue;
    const x = ((value - hist.lo) / span) * width;
    ctx.beginPath();
    ctx.moveTo(x, plotHeight + 4);
    ctx.lineTo(x, height - 2);
    ctx.stroke();
  }
}

function openDetail(item: PairItem): void {
  if (!current) return;
  view = { ...view, detail: item.id };
  saveView();
  detail.open(item, current);
}

function renderStep(step: StepView): void {
  current = step;
  view = { ...view, step: view.follow ? null : step.step };
  saveView();
  (stepInput as HTMLElement & { value: string }).value = String(step.step);
  const noisyPicks = step.chosen.filter((pair) => pair.noisy).length;
  const parts = [`Step ${step.step}`, `${step.chosen.length} picked${step.candidates !== undefined ? ` of ${step.candidates} candidates` : ''}`];
  if (step.chosen.some((pair) => pair.noisy !== undefined)) parts.push(`${noisyPicks} known mismatched`);
  if (step.chosen.some((pair) => pair.missing)) parts.push(`${step.chosen.filter((pair) => pair.missing).length} ids not in the dataset`);
  stepInfo.textContent = parts.join(' · ');
  renderSteps();
  renderGrids();
  if (view.detail) {
    const open = [...step.chosen, ...(step.rejected ?? [])].find((pair) => pair.id === view.detail);
    if (open && detail.openId === undefined) detail.open(open, step);
    else detail.refresh(step);
  }
}

// ---- messages from the host ----------------------------------------------------------------------

function handle(message: InspectorHostMessage): void {
  switch (message.type) {
    case 'snapshot':
      run = message.payload.run;
      saveView();
      stepRanges = message.payload.stepRanges;
      live = message.payload.live;
      title.textContent = `Batch inspector — ${run.label}`;
      if (message.payload.view) renderStep(message.payload.view);
      else {
        stepInfo.textContent = stepRanges.length === 0 ? 'No steps recorded yet.' : '';
        renderSteps();
        renderGrids();
      }
      app.classList.add('loaded');
      break;
    case 'step':
      renderStep(message.payload);
      break;
    case 'steps':
      stepRanges = message.payload.stepRanges;
      live = message.payload.live;
      if (run && message.payload.status) run = { ...run, status: message.payload.status };
      renderSteps();
      break;
    case 'images': {
      const arrived = images.receive(message.payload.size, message.payload.images);
      if (arrived.size > 0) {
        chosenGrid.refresh();
        if (current?.rejected) rejectedGrid.refresh();
        detail.refresh();
      }
      break;
    }
    case 'notice':
      showNotice(message.payload.level, message.payload.message);
      break;
    default: {
      const unreachable: never = message;
      throw new Error(`unhandled message ${JSON.stringify(unreachable)}`);
    }
  }
}

onThemeChange(() => {
  if (current) renderRejected();
});
onHostMessage(parseInspectorHostMessage, handle, (problem) => showNotice('error', `Ignored a malformed message from the extension: ${problem}`));
renderGrids();
renderSteps();
host.post({ type: 'ready', payload: { protocol: webviewProtocolVersion, view } });
