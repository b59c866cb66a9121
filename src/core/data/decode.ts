/**
 * Image decoding for the real-data sources: bytes of a PNG, JPEG or WebP file
 * in, a square RGB image at the model's resolution out.
 *
 * Decoding is @napi-rs/image's native decoder (`rawPixelsSync`, which hands
 * back the pixels in the file's own colour type). Everything after that —
 * colour conversion, crop and resize — is plain JS: the images are tiny, and
 * owning the resampler keeps the output identical on every platform.
 *
 * Geometry: the central square of the image (side = the shorter side) is
 * resampled to `resolution × resolution`. Like CLIP's preprocessing (resize
 * the short side, centre-crop), nothing is letterboxed, so the model never
 * sees padding bars; the cost is that the edges of a long image are cut off.
 * Shrinking uses an area (box) filter — exact coverage weights, no aliasing
 * from skipped pixels; enlarging uses bilinear interpolation.
 *
 * Colour: greyscale is replicated to three channels; alpha is dropped, as
 * PIL's `convert('RGB')` does; 16-bit and float images are scaled to 8 bits.
 *
 * The result is rounded to 8 bits (`decodeImage`), the form the sources cache:
 * a quarter the memory of floats, and every path — cached or re-read — yields
 * exactly the same values. `decodeImageFloat`/`writeUnitFloats` turn it into
 * the [0, 1] floats the model takes.
 */
import { Transformer } from '@napi-rs/image';

/** A decoded image: 8-bit RGB, HWC, `width × height × 3` bytes. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

// @napi-rs/image's JsColorType values. Its enum is declared for TypeScript
// only (no runtime object), so the numbers are spelled out here.
const L8 = 0;
const LA8 = 1;
const RGB8 = 2;
const RGBA8 = 3;
const L16 = 4;
const LA16 = 5;
const RGB16 = 6;
const RGBA16 = 7;
const RGB32F = 8;
const RGBA32F = 9;

/** Channels per pixel and bytes per channel of each colour type. */
const LAYOUT: Record<number, { channels: number; bytes: number }> = {
  [L8]: { channels: 1, bytes: 1 },
  [LA8]: { channels: 2, bytes: 1 },
  [RGB8]: { channels: 3, bytes: 1 },
  [RGBA8]: { channels: 4, bytes: 1 },
  [L16]: { channels: 1, bytes: 2 },
  [LA16]: { channels: 2, bytes: 2 },
  [RGB16]: { channels: 3, bytes: 2 },
  [RGBA16]: { channels: 4, bytes: 2 },
  [RGB32F]: { channels: 3, bytes: 4 },
  [RGBA32F]: { channels: 4, bytes: 4 },
};

/**
 * Decodes a PNG, JPEG or WebP file to 8-bit RGB at its own size.
 * Throws an Error (message from the decoder) on corrupt or truncated bytes.
 */
export function decodeRgb(bytes: Uint8Array): RgbImage {
  if (bytes.length === 0) throw new Error('the file is empty');
  // JPEG decoders fill a truncated scan with grey instead of failing, so a
  // cut-off download would slip through as a half-grey picture. A complete
  // JPEG carries an end-of-image marker (FF D9); demand one, as PIL does.
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && !hasJpegEnd(bytes)) {
    throw new Error('the JPEG is truncated (no end-of-image marker)');
  }
  let width: number;
  let height: number;
  let colorType: number;
  let raw: Buffer;
  try {
    const transformer = new Transformer(bytes);
    ({ width, height, colorType } = transformer.metadataSync());
    raw = transformer.rawPixelsSync();
  } catch (err) {
    throw new Error(cleanDecoderMessage(err), { cause: err });
  }
  const layout = LAYOUT[colorType];
  if (layout === undefined) throw new Error(`unsupported pixel format (colour type ${colorType})`);
  const pixels = width * height;
  if (width <= 0 || height <= 0 || raw.length !== pixels * layout.channels * layout.bytes) {
    throw new Error(`the decoder returned ${raw.length} bytes for a ${width}×${height} image`);
  }
  return { width, height, data: toRgb8(raw, pixels, layout.channels, layout.bytes) };
}

/**
 * Decodes and resizes to `resolution × resolution` 8-bit RGB (HWC), the form
 * the sources validate and cache. Throws on undecodable bytes.
 */
export function decodeImage(bytes: Uint8Array, resolution: number): Uint8Array {
  return resizeToSquare(decodeRgb(bytes), resolution);
}

/** Decodes and resizes to `resolution × resolution × 3` floats in [0, 1] (HWC RGB). */
export function decodeImageFloat(bytes: Uint8Array, resolution: number): Float32Array {
  const rgb = decodeImage(bytes, resolution);
  const out = new Float32Array(rgb.length);
  writeUnitFloats(rgb, out, 0);
  return out;
}

/** Writes 8-bit values into `out` from `offset` on, scaled to [0, 1]. */
export function writeUnitFloats(rgb: Uint8Array, out: Float32Array, offset: number): void {
  for (let i = 0; i < rgb.length; i++) out[offset + i] = rgb[i] / 255;
}

/**
 * Crops the central square and resamples it to `resolution` (area filter when
 * shrinking, bilinear when enlarging). Returns 8-bit RGB, HWC.
 */
export function resizeToSquare(image: RgbImage, resolution: number): Uint8Array {
  if (!Number.isInteger(resolution) || resolution <= 0) {
    throw new RangeError(`resolution must be a positive integer, got ${resolution}`);
  }
  const side = Math.min(image.width, image.height);
  const x0 = Math.floor((image.width - side) / 2);
  const y0 = Math.floor((image.height - side) / 2);
  const stride = image.width * 3;
  const src = image.data;

  if (side === resolution) {
    if (image.width === side && image.height === side) return src;
    const out = new Uint8Array(side * side * 3);
    for (let y = 0; y < side; y++) {
      const from = (y0 + y) * stride + x0 * 3;
      out.set(src.subarray(from, from + side * 3), y * side * 3);
    }
    return out;
  }

  // Hot loop (every image, every epoch it misses the cache): the tap tables
  // are hoisted into locals so V8 keeps them in registers.
  const { start, from, weight } = resampleTaps(side, resolution);
  // Horizontal pass: `side` rows of the crop × `resolution` columns, in floats.
  const tmp = new Float32Array(side * resolution * 3);
  for (let y = 0; y < side; y++) {
    const rowStart = (y0 + y) * stride + x0 * 3;
    for (let x = 0; x < resolution; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = start[x], end = start[x + 1]; k < end; k++) {
        const p = rowStart + from[k] * 3;
        const w = weight[k];
        r += w * src[p];
        g += w * src[p + 1];
        b += w * src[p + 2];
      }
      const q = (y * resolution + x) * 3;
      tmp[q] = r;
      tmp[q + 1] = g;
      tmp[q + 2] = b;
    }
  }
  // Vertical pass into the square output.
  // Uint8ClampedArray rounds and clamps on store, sparing a Math.round per value.
  const out = new Uint8ClampedArray(resolution * resolution * 3);
  const rowFloats = resolution * 3;
  const acc = new Float64Array(rowFloats);
  for (let y = 0; y < resolution; y++) {
    acc.fill(0);
    for (let k = start[y], end = start[y + 1]; k < end; k++) {
      const w = weight[k];
      const inRow = from[k] * rowFloats;
      for (let i = 0; i < rowFloats; i++) acc[i] += w * tmp[inRow + i];
    }
    const outRow = y * rowFloats;
    out.set(acc, outRow);
  }
  return new Uint8Array(out.buffer);
}

function clampByte(v: number): number {
  const r = Math.round(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/**
 * Sparse resampling weights from `n` source samples to `m` output samples:
 * output j is the sum over k in [start[j], start[j+1]) of weight[k] times
 * source sample from[k]. The weights of each output sum to 1.
 */
interface Taps {
  start: Int32Array;
  from: Int32Array;
  weight: Float32Array;
}

// Keyed by (source side, output side). Real datasets have many image sizes,
// so the cache is bounded: cleared wholesale when it fills (tables are cheap).
const tapCache = new Map<string, Taps>();
const MAX_CACHED_TAPS = 512;

function resampleTaps(n: number, m: number): Taps {
  const cacheKey = `${n}:${m}`;
  const cached = tapCache.get(cacheKey);
  if (cached) return cached;
  const start = new Int32Array(m + 1);
  const from: number[] = [];
  const weights: number[] = [];
  const scale = n / m;
  for (let j = 0; j < m; j++) {
    start[j] = weights.length;
    if (m < n) {
      // Area filter: output j covers source interval [j·scale, (j+1)·scale).
      const lo = j * scale;
      const hi = lo + scale;
      for (let i = Math.floor(lo); i < Math.min(n, Math.ceil(hi)); i++) {
        from.push(i);
        weights.push((Math.min(hi, i + 1) - Math.max(lo, i)) / scale);
      }
    } else {
      // Bilinear between the two nearest source centres (edges clamped).
      const pos = Math.min(n - 1, Math.max(0, (j + 0.5) * scale - 0.5));
      const a = Math.min(Math.floor(pos), n - 1);
      const frac = pos - a;
      from.push(a);
      weights.push(1 - frac);
      if (a + 1 < n && frac > 0) {
        from.push(a + 1);
        weights.push(frac);
      }
    }
  }
  start[m] = weights.length;
  const taps = { start, from: Int32Array.from(from), weight: Float32Array.from(weights) };
  if (tapCache.size >= MAX_CACHED_TAPS) tapCache.clear();
  tapCache.set(cacheKey, taps);
  return taps;
}

/** Converts raw decoder pixels of any supported colour type to 8-bit RGB. */
function toRgb8(raw: Buffer, pixels: number, channels: number, bytes: number): Uint8Array {
  if (channels === 3 && bytes === 1) return raw;
  const out = new Uint8Array(pixels * 3);
  // Wider samples are native-endian; copy into an aligned typed array first.
  let read: (i: number) => number;
  if (bytes === 1) {
    read = (i) => raw[i];
  } else if (bytes === 2) {
    const wide = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    read = (i) => Math.round(wide[i] / 257);
  } else {
    const wide = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    read = (i) => clampByte(wide[i] * 255);
  }
  const grey = channels <= 2;
  for (let p = 0; p < pixels; p++) {
    const s = p * channels;
    const d = p * 3;
    if (grey) {
      const v = read(s);
      out[d] = v;
      out[d + 1] = v;
      out[d + 2] = v;
    } else {
      out[d] = read(s);
      out[d + 1] = read(s + 1);
      out[d + 2] = read(s + 2);
    }
  }
  return out;
}

function hasJpegEnd(bytes: Uint8Array): boolean {
  for (let i = bytes.length - 2; i >= 2; i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return true;
  }
  return false;
}

/** The decoder's message without its Rust-side prefixes, for a user to read. */
function cleanDecoderMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message
    .replace(/^Decode image failed\s*/i, '')
    .replace(/^Guess format from input image failed\s*/i, 'not a PNG, JPEG or WebP image: ') || 'undecodable image';
}

/**
 * RGB floats in [0, 1], HWC → PNG bytes (8 bits a channel, opaque). The one
 * encoder: the inspector's thumbnails and `sift export`'s rendered images.
 */
export async function encodePng(rgb: Float32Array, side: number): Promise<Uint8Array> {
  const rgba = new Uint8Array(side * side * 4);
  for (let p = 0, q = 0; p < side * side; p++, q += 3) {
    rgba[p * 4] = Math.round(Math.min(1, Math.max(0, rgb[q])) * 255);
    rgba[p * 4 + 1] = Math.round(Math.min(1, Math.max(0, rgb[q + 1])) * 255);
    rgba[p * 4 + 2] = Math.round(Math.min(1, Math.max(0, rgb[q + 2])) * 255);
    rgba[p * 4 + 3] = 255;
  }
  return new Uint8Array(await Transformer.fromRgbaPixels(rgba, side, side).png());
}

/** The file extension an image's bytes call for (`png`, `jpg`, `webp`), from their signature; undefined if none fits. */
export function imageExtension(bytes: Uint8Array): 'png' | 'jpg' | 'webp' | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpg';
  const ascii = (from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return undefined;
}
