/**
 * Which tar files make up a WebDataset: one `.tar`, every `.tar` in a folder,
 * or a brace pattern as img2dataset and the webdataset library write them
 * (`shards/{00000..00009}.tar`, `{train,val}-{0..3}.tar`).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DataError } from '../types.ts';

/** More shards than this from one pattern is taken as a typo. */
const MAX_EXPANSION = 1_000_000;

/** True if the spec is a brace pattern rather than a plain path. */
export function isBracePattern(spec: string): boolean {
  return /\{[^{}]*(\.\.|,)[^{}]*\}/.test(spec);
}

/**
 * Expands every `{a..b}` (numeric, zero-padded to the wider bound if either
 * bound has a leading zero) and `{x,y,z}` group, left to right, in order.
 */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open === -1) return [pattern];
  const close = pattern.indexOf('}', open);
  if (close === -1) throw new DataError(`${pattern}: unmatched "{" in the shard pattern.`);
  const inner = pattern.slice(open + 1, close);
  if (inner.includes('{')) throw new DataError(`${pattern}: nested braces are not supported in a shard pattern.`);
  const head = pattern.slice(0, open);
  const tails = expandBraces(pattern.slice(close + 1));
  const choices = groupChoices(inner, pattern);
  if (choices.length * tails.length > MAX_EXPANSION) {
    throw new DataError(`${pattern}: the pattern names more than ${MAX_EXPANSION} shards; check the range.`);
  }
  const out: string[] = [];
  for (const choice of choices) for (const tail of tails) out.push(head + choice + tail);
  return out;
}

function groupChoices(inner: string, pattern: string): string[] {
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(inner);
  if (range) {
    const [, a, b] = range;
    const from = Number(a);
    const to = Number(b);
    if (Math.abs(to - from) + 1 > MAX_EXPANSION) {
      throw new DataError(`${pattern}: the range {${inner}} names more than ${MAX_EXPANSION} shards; check it.`);
    }
    const padded = /^-?0\d/.test(a) || /^-?0\d/.test(b);
    const width = padded ? Math.max(a.replace('-', '').length, b.replace('-', '').length) : 0;
    const step = from <= to ? 1 : -1;
    const out: string[] = [];
    for (let n = from; n !== to + step; n += step) {
      out.push((n < 0 ? '-' : '') + String(Math.abs(n)).padStart(width, '0'));
    }
    return out;
  }
  if (inner.includes(',')) return inner.split(',');
  throw new DataError(`${pattern}: cannot read the brace group {${inner}}; use {00000..00009} or {a,b,c}.`);
}

/** The `.tar` files directly in a folder, in name order. */
export async function tarsInFolder(folder: string): Promise<string[]> {
  const names = await fs.readdir(folder);
  return names
    .filter((name) => name.toLowerCase().endsWith('.tar'))
    .sort()
    .map((name) => path.join(folder, name));
}
