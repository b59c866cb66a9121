/**
 * WebDataset tar shards: a sample is the tar members sharing a key —
 * `<key>.png|jpg|jpeg|webp` (the image), `<key>.txt` (the caption) and
 * optionally `<key>.json` (metadata; `label` and `noisy` are read). The id of
 * a sample is its key.
 *
 * Opening reads each shard once, as a stream: captions and metadata are kept,
 * each image is decoded once to validate it (and to seed the cache) and then
 * dropped; only its (shard, offset, length) is remembered, so later reads are
 * one positional read each. Following the WebDataset convention, a sample's
 * members are adjacent in the tar; the key is the member path up to the first
 * dot of its file name (`dir/0001.jpg` → `dir/0001`).
 */
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { SkipLog, checkFields, decodeUtf8, fail, preview, settingsFrom, throttledProgress } from '../rows.ts';
import type { Checked, RowFields, SourceSettings } from '../rows.ts';
import type { ImageTextDataset, OpenDatasetOptions } from '../types.ts';
import { ImageCache } from './cache.ts';
import { IndexedDataset, validateImage } from './indexed.ts';
import type { IndexedRow } from './indexed.ts';
import { TarStore } from './tarstore.ts';

/**
 * tar-stream gives each entry the offset of its header block (after any
 * pax/GNU long-name blocks); the member's data starts one block later.
 */
const TAR_BLOCK = 512;

const IMAGE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'webp']);

/** One sample while its members are being read. */
interface PendingSample {
  key: string;
  members: string[];
  image?: { name: string; bytes: Buffer; offset: number };
  caption?: Buffer;
  meta?: Buffer;
  /** Where the key was first seen, if this is a repeat. */
  duplicateOf?: string;
}

/** Everything the indexing pass builds, shared by all shards. */
interface IndexState {
  settings: SourceSettings;
  log: SkipLog;
  rows: IndexedRow[];
  store: TarStore;
  cache: ImageCache;
  /** Key → where it was first seen, to refuse repeats. */
  keys: Map<string, string>;
  progress: (done: number, total: number | undefined, final?: boolean) => void;
}

/**
 * Opens the given shards as one dataset. `source` is what the user typed
 * (a file, folder or pattern) and names the dataset in messages.
 */
export async function openWebDataset(source: string, shards: readonly string[], options: OpenDatasetOptions): Promise<ImageTextDataset> {
  const settings = settingsFrom(options);
  const state: IndexState = {
    settings,
    log: new SkipLog(settings.maxReportedSkips),
    rows: [],
    store: new TarStore(shards),
    cache: new ImageCache(settings.cacheBytes),
    keys: new Map(),
    progress: throttledProgress(settings.onProgress),
  };
  state.progress(0, undefined, true);
  for (let s = 0; s < shards.length; s++) await indexShard(shards[s], s, state);

  if (state.rows.length === 0) {
    await state.store.close();
    throw state.log.noUsableRows(source);
  }
  state.progress(state.rows.length, state.rows.length, true);
  return new IndexedDataset({
    source,
    format: 'webdataset',
    resolution: settings.resolution,
    rows: state.rows,
    store: state.store,
    skips: state.log.report(state.rows.length),
    cache: state.cache,
  });
}

/**
 * Streams one shard. A shard that is missing or cut short is recorded as one
 * skip and the dataset opens with the samples read up to that point: one bad
 * download out of a thousand shards should not stop a run.
 */
async function indexShard(shard: string, shardIndex: number, state: IndexState): Promise<void> {
  const shardName = path.basename(shard);
  const extract = tar.extract();
  const input = createReadStream(shard, { highWaterMark: 1 << 20 });
  input.on('error', (err) => extract.destroy(err));
  input.pipe(extract);

  let current: PendingSample | undefined;
  let samples = 0;
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const member = splitMember(header.name);
      if ((header.type !== 'file' && header.type !== 'contiguous-file') || member === undefined) {
        entry.resume();
        continue;
      }
      if (current !== undefined && current.key !== member.key) {
        finishSample(current, shardName, shardIndex, state);
        samples++;
        current = undefined;
      }
      current ??= startSample(member.key, `${shardName}:${member.key}`, state);
      current.members.push(member.name);

      const isImage = IMAGE_EXTENSIONS.has(member.ext);
      const wanted = (isImage && !current.image) || (member.ext === 'txt' && !current.caption) || (member.ext === 'json' && !current.meta);
      if (!wanted) {
        entry.resume();
        continue;
      }
      const bytes = await readAll(entry as unknown as AsyncIterable<Buffer>);
      if (isImage) current.image = { name: member.name, bytes, offset: entry.offset + TAR_BLOCK };
      else if (member.ext === 'txt') current.caption = bytes;
      else current.meta = bytes;
    }
    if (current !== undefined) finishSample(current, shardName, shardIndex, state);
  } catch (err) {
    input.destroy();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') state.log.skip('missing-file', shardName, `shard not found: ${shard}`);
    else {
      state.log.skip(
        'unreadable',
        shardName,
        `the tar is corrupt or cut short after ${samples} complete sample${samples === 1 ? '' : 's'} (${(err as Error).message}); ` +
          'the samples before that point are used — re-download or re-create this shard',
      );
    }
  }
}

function startSample(key: string, where: string, state: IndexState): PendingSample {
  const sample: PendingSample = { key, members: [] };
  const first = state.keys.get(key);
  if (first !== undefined) sample.duplicateOf = first;
  else state.keys.set(key, where);
  return sample;
}

/** Validates a complete sample; a usable one joins the dataset. */
function finishSample(sample: PendingSample, shardName: string, shardIndex: number, state: IndexState): void {
  const { log, settings } = state;
  const where = `${shardName}:${sample.key}`;
  log.row();
  const checked = checkSample(sample, settings);
  if (!checked.ok) {
    log.skip(checked.reason, where, checked.detail);
  } else {
    const image = sample.image!;
    try {
      const imageDigest = validateImage(image.bytes, settings.resolution, state.cache, state.rows.length);
      const { caption, label, noisy } = checked.value;
      state.rows.push({ id: sample.key, caption, label, noisy, imageDigest });
      state.store.add(shardIndex, image.offset, image.bytes.length, where);
    } catch (err) {
      log.skip('corrupt-image', where, `image "${image.name}" is corrupt or truncated: ${(err as Error).message}`);
    }
  }
  state.progress(log.rowsSeen, undefined);
}

/** The checks a sample's members must pass before its image is decoded. */
function checkSample(sample: PendingSample, settings: SourceSettings): Checked<RowFields> {
  const members = sample.members.join(', ');
  if (sample.duplicateOf !== undefined) {
    return fail(
      'duplicate-key',
      `key "${sample.key}" was already used at ${sample.duplicateOf}; keys must be unique across shards, ` +
        "and a sample's files adjacent in its tar",
    );
  }
  if (!sample.image) return fail('missing-file', `sample has no image (.png, .jpg, .jpeg or .webp); its members: ${members}`);
  if (!sample.caption) return fail('missing-file', `sample has no .txt caption; its members: ${members}`);
  const caption = decodeUtf8(sample.caption);
  if (caption === undefined) return fail('non-utf8', `${sample.key}.txt is not valid UTF-8 text; re-write it as UTF-8`);
  let meta: Record<string, unknown> = {};
  if (sample.meta) {
    const text = decodeUtf8(sample.meta);
    if (text === undefined) return fail('non-utf8', `${sample.key}.json is not valid UTF-8 text`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return fail('invalid-json', `${sample.key}.json is not valid JSON (${(err as Error).message}): ${preview(text)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return fail('wrong-field-type', `${sample.key}.json must hold a JSON object, e.g. {"label": "cat"}`);
    }
    meta = parsed as Record<string, unknown>;
  }
  return checkFields({ image: sample.image.name, caption, label: meta.label, noisy: meta.noisy }, settings.maxCaptionBytes);
}

/** `dir/0001.jpg` → key `dir/0001`, ext `jpg`; undefined for names without one. */
function splitMember(rawName: string): { name: string; key: string; ext: string } | undefined {
  const name = rawName.replace(/^(\.\/)+/, '');
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return undefined; // hidden file, or no extension
  return { name, key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}
