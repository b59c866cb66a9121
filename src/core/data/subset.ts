/**
 * A view of some rows of a dataset, re-indexed from 0: the held-out eval
 * split, and the training rows that remain.
 */
import { createHash } from 'node:crypto';
import type { ImageTextDataset } from './types';
import { Rng } from '../random';

export function subsetDataset(base: ImageTextDataset, rows: readonly number[], name: string): ImageTextDataset {
  const map = Int32Array.from(rows);
  return {
    source: `${base.source} (${name})`,
    format: base.format,
    size: map.length,
    resolution: base.resolution,
    id: (i) => base.id(map[i]),
    caption: (i) => base.caption(map[i]),
    label: (i) => base.label(map[i]),
    noisy: (i) => base.noisy(map[i]),
    loadImages: (indices) => base.loadImages(indices.map((i) => map[i])),
    ...(base.imageBytes ? { imageBytes: (i: number) => base.imageBytes!(map[i]) } : {}),
    zeroshotTemplate: base.zeroshotTemplate,
    fingerprint: () => createHash('sha256').update(`${base.fingerprint()}\0${name}\0${rows.join(',')}`).digest('hex'),
    skips: base.skips,
    close: async () => {},
  };
}

/** Splits rows into (train, held-out) by seed; the held-out share is `fraction`, at least one row. */
export function holdOut(base: ImageTextDataset, fraction: number, seed: number): { train: ImageTextDataset; heldOut: ImageTextDataset } {
  const order = new Rng(seed ^ 0x2545f491).shuffle([...Array(base.size).keys()]);
  const count = Math.max(1, Math.round(base.size * fraction));
  if (count >= base.size) throw new Error(`${base.source} has ${base.size} usable rows: too few to hold out an eval split. Give --eval-data.`);
  const heldOut = order.slice(0, count).sort((a, b) => a - b);
  const train = order.slice(count).sort((a, b) => a - b);
  return { train: subsetDataset(base, train, 'train split'), heldOut: subsetDataset(base, heldOut, 'held-out eval split') };
}
