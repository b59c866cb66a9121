/**
 * Renders a contact sheet of built-in synthetic examples, to check by eye that
 * captions match pictures and shapes stay recognisable:
 *
 *   node --import tsx scripts/synthetic-sheet.ts [--spec builtin:train] [--start 0]
 *     [--count 64] [--resolution 64] [--scale 2] [--out /tmp/synthetic-sheet.png]
 *
 * Tiles run left to right, top to bottom; each has a frame coloured by its kind
 * (grey clean, red swapped caption, blue near-duplicate, orange degraded) and
 * its caption is printed to stdout under the same number.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Transformer } from '@napi-rs/image';
import { openBuiltin, type ExampleKind } from '../src/core/data/synthetic.ts';

const FRAME: Record<ExampleKind, [number, number, number]> = {
  clean: [128, 128, 128],
  swapped: [220, 30, 30],
  duplicate: [40, 90, 230],
  degraded: [255, 150, 0],
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      spec: { type: 'string', default: 'builtin:train' },
      start: { type: 'string', default: '0' },
      count: { type: 'string', default: '64' },
      resolution: { type: 'string', default: '64' },
      scale: { type: 'string', default: '2' },
      columns: { type: 'string', default: '8' },
      out: { type: 'string', default: '/tmp/synthetic-sheet.png' },
    },
  });
  const start = Number(values.start);
  const resolution = Number(values.resolution);
  const scale = Number(values.scale);
  const columns = Number(values.columns);
  const dataset = await openBuiltin(values.spec, { resolution });
  const count = Math.min(Number(values.count), dataset.size - start);
  const indices = Array.from({ length: count }, (_, i) => start + i);
  const pixels = await dataset.loadImages(indices);

  const frame = 3;
  const tile = resolution * scale + 2 * frame;
  const rows = Math.ceil(count / columns);
  const width = columns * tile;
  const height = rows * tile;
  const rgba = new Uint8Array(width * height * 4).fill(255);
  const put = (x: number, y: number, [r, g, b]: readonly number[]): void => {
    const o = (y * width + x) * 4;
    rgba[o] = r;
    rgba[o + 1] = g;
    rgba[o + 2] = b;
  };
  for (let n = 0; n < count; n++) {
    const index = indices[n];
    const described = dataset.describe(index);
    const x0 = (n % columns) * tile;
    const y0 = Math.floor(n / columns) * tile;
    for (let y = 0; y < tile; y++) {
      for (let x = 0; x < tile; x++) put(x0 + x, y0 + y, FRAME[described.kind]);
    }
    const base = n * resolution * resolution * 3;
    for (let y = 0; y < resolution * scale; y++) {
      for (let x = 0; x < resolution * scale; x++) {
        const o = base + (Math.floor(y / scale) * resolution + Math.floor(x / scale)) * 3;
        put(x0 + frame + x, y0 + frame + y, [0, 1, 2].map((c) => Math.round(pixels[o + c] * 255)));
      }
    }
    const truth = described.caption === described.trueCaption ? '' : `   [image: ${described.trueCaption}]`;
    const extra = described.kind === 'duplicate' ? ` of #${described.sceneIndex}` : described.degradation ? ` (${described.degradation})` : '';
    console.log(`${String(n).padStart(2)} #${index} ${described.kind}${extra}: ${described.caption}${truth}`);
  }
  writeFileSync(values.out, Transformer.fromRgbaPixels(rgba, width, height).pngSync());
  console.log(`wrote ${values.out} (${width}×${height}, ${columns} per row)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
