/** Numbers as the panels show them: short, with SI prefixes, times as h/m/s. */
import type { XAxis } from '../../src/protocol/webview';

const prefixes: [number, string][] = [
  [1e18, 'E'],
  [1e15, 'P'],
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
];

/** 1234567 → "1.23M"; small numbers keep up to 3 significant digits. */
export function si(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const magnitude = Math.abs(value);
  for (const [scale, prefix] of prefixes) if (magnitude >= scale) return `${trim((value / scale).toPrecision(3))}${prefix}`;
  if (magnitude >= 1 || magnitude === 0) return trim(Number.isInteger(value) ? String(value) : value.toPrecision(3));
  return trim(value.toPrecision(3));
}

const trim = (text: string): string => (text.includes('.') && !text.includes('e') ? text.replace(/\.?0+$/, '') : text);

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 60) return `${trim(seconds.toPrecision(3))} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} m ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} m`;
}

/** A score or loss: 3 significant digits, with a sign for negative values. */
export const score = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '–' : trim(value.toPrecision(3)));

export const percent = (value: number): string => `${trim((value * 100).toPrecision(3))}%`;

export const axisLabels: Record<XAxis, string> = {
  step: 'Step',
  examples_seen: 'Examples seen',
  flops: 'FLOPs (total)',
  flops_train: 'FLOPs (training only)',
  wall_s: 'Wall time',
  active_s: 'Active time',
};

/** How an x value is written on the axis it belongs to. */
export function formatX(axis: XAxis, value: number): string {
  if (axis === 'wall_s' || axis === 'active_s') return duration(value);
  return si(value);
}
