/**
 * Fixtures for the data-source tests, written to a temp folder at test time:
 * small encoded images, rows files, and WebDataset tars.
 */
import { rmSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transformer } from '@napi-rs/image';
import * as tar from 'tar-stream';

export type Rgb = [number, number, number];

/** CompressionType.Fast: the default runs a slow optimiser, needless for fixtures. */
const FAST_PNG = { compressionType: 1 };

function rgba(width: number, height: number, colour: (x: number, y: number) => Rgb, alpha = 255): Uint8Array {
  const px = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = colour(x, y);
      px.set([r, g, b, alpha], (y * width + x) * 4);
    }
  }
  return px;
}

export function png(width: number, height: number, colour: Rgb | ((x: number, y: number) => Rgb)): Buffer {
  const fill = typeof colour === 'function' ? colour : () => colour;
  return Transformer.fromRgbaPixels(rgba(width, height, fill), width, height).pngSync(FAST_PNG);
}

export function jpeg(width: number, height: number, colour: Rgb): Buffer {
  return Transformer.fromRgbaPixels(rgba(width, height, () => colour), width, height).jpegSync(95);
}

export function webp(width: number, height: number, colour: Rgb): Buffer {
  return Transformer.fromRgbaPixels(rgba(width, height, () => colour), width, height).webpLosslessSync();
}

/** A true 8-bit greyscale PNG (colour type L8). */
export function greyPng(width: number, height: number, value: number): Buffer {
  return new Transformer(png(width, height, [value, value, value])).grayscale().pngSync(FAST_PNG);
}

const created: string[] = [];

/** A fresh temp folder, removed when the test process exits. */
export async function tempDir(prefix = 'sift-data-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  if (created.length === 0) {
    process.once('exit', () => {
      for (const d of created) rmSync(d, { recursive: true, force: true });
    });
  }
  created.push(dir);
  return dir;
}

/** Writes files (path → bytes or text) under a folder, creating subfolders. */
export async function writeFiles(root: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(root, name);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, content);
  }
}

export function jsonl(rows: readonly unknown[]): string {
  return rows.map((row) => (typeof row === 'string' ? row : JSON.stringify(row))).join('\n') + '\n';
}

/** Writes a tar with the given members, in order. */
export async function writeTar(file: string, members: readonly [string, string | Uint8Array][]): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk: unknown) => void chunks.push(chunk as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const [name, content] of members) {
    pack.entry({ name }, typeof content === 'string' ? Buffer.from(content) : content);
  }
  pack.finalize();
  await done;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, Buffer.concat(chunks));
}

/** Pixel `i` (row-major) of image `k` in a `loadImages` result, as [r, g, b]. */
export function pixelAt(images: Float32Array, resolution: number, k: number, i = 0): number[] {
  const base = k * resolution * resolution * 3 + i * 3;
  return [images[base], images[base + 1], images[base + 2]];
}

export const RED: Rgb = [255, 0, 0];
export const GREEN: Rgb = [0, 255, 0];
export const BLUE: Rgb = [0, 0, 255];
