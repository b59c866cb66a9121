/**
 * The batch inspector bundle in headless Chromium, with the real host side
 * (InspectorModel and ThumbnailService, drawing the built-in data's images)
 * answering its messages: a step's picks with thumbnails and scores, step
 * selection, sorting and filtering, the detail view and "why this pair",
 * follow-live, rejected candidates and exact contributions where a line
 * carries them, and dataset text that tries to be HTML shown as text.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Transformer } from '@napi-rs/image';
import { InspectorModel } from '../../src/panels/inspector';
import { ThumbnailService } from '../../src/panels/thumbnails';
import { parseInspectorWebviewMessage, type InspectorState } from '../../src/protocol/webview';
import { tmpDir, writeFixtureRun, writeFixtureRuns } from '../unit/panels-fixtures';
import { canvasInk, launch, openPanel, screenshot, startServer, type Browser, type PanelPage, type Theme } from './harness';

let browser: Browser;
let server: Awaited<ReturnType<typeof startServer>>;
let root: string;
const thumbnails = new ThumbnailService();

before(async () => {
  server = await startServer();
  browser = await launch();
  root = tmpDir();
  writeFixtureRuns(root, 120);
});

after(async () => {
  await browser?.close();
  await server?.close();
  await thumbnails.close();
});

/** Plays the host with the model, as the panel class will. */
function hostFor(model: InspectorModel) {
  return async (raw: unknown, panel: PanelPage): Promise<void> => {
    const parsed = parseInspectorWebviewMessage(raw);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.problem);
    const message = parsed.message;
    switch (message.type) {
      case 'ready':
        for (const reply of await model.snapshot(message.payload.view)) await panel.send(reply);
        break;
      case 'select-step':
        for (const reply of await model.selectStep(message.payload.step)) await panel.send(reply);
        break;
      case 'follow':
        model.setFollow(message.payload.on);
        break;
      case 'images':
        await panel.send(await model.images(message.payload.ids, message.payload.size));
        break;
    }
  };
}

async function openInspector(theme: Theme, dir: string, savedState?: unknown): Promise<{ panel: PanelPage; model: InspectorModel }> {
  const model = new InspectorModel(dir, { thumbnails });
  const panel = await openPanel(browser, server.origin, 'inspector', theme, hostFor(model), savedState);
  await panel.page.waitForSelector('.app.loaded');
  await panel.page.waitForSelector('.card img.thumb');
  return { panel, model };
}

const cardCaptions = (panel: PanelPage): Promise<string[]> => panel.page.locator('.chosen .card .caption').allTextContents();

describe('batch inspector webview', () => {
  test('shows the latest step: picks with thumbnails, captions and scores; rejects not recorded; screenshots', async () => {
    for (const theme of ['dark', 'light', 'high-contrast'] as const) {
      const { panel } = await openInspector(theme, path.join(root, 'jest-f80'));
      const { page } = panel;
      assert.match((await page.locator('#step-info').textContent())!, /^Step 120 · 16 picked of 80 candidates/);
      assert.equal(await page.locator('#chosen-head').textContent(), 'Picked (16)');
      const captions = await cardCaptions(panel);
      assert.equal(captions.length, 16);
      assert.ok(captions.every((caption) => caption.length > 0));
      await page.waitForFunction(() => document.querySelectorAll('.chosen .card img.thumb').length === 16);
      const firstScores = await page.locator('.chosen .card').first().locator('dt').allTextContents();
      assert.deepEqual(firstScores, ['learner', 'reference', 'learnability', 'pick logit']);
      assert.match((await page.locator('#not-recorded').textContent())!, /Not recorded for this run/);
      assert.ok((await canvasInk(page, '.pool-hist')) > 0.05, 'the pool histogram is drawn');
      assert.deepEqual(panel.dialogs, []);
      assert.deepEqual(await panel.violations(), []);
      assert.deepEqual(panel.errors, []);
      await screenshot(page, `inspector-${theme}`);
      await page.close();
    }
  });

  test('a panel whose script never arrives says what to do instead of staying blank', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${server.origin}/panel/inspector?theme=dark&missing-script=1&boot-ms=300`);
    const boot = page.locator('#sift-boot');
    await boot.waitFor({ state: 'visible', timeout: 10_000 });
    const text = (await boot.textContent())!.replace(/\s+/g, ' ');
    assert.match(text, /inspector did not start: its script has not run/);
    assert.match(text, /Close this tab and open it again/);
    assert.match(text, /Developer: Reload Webviews/);
    await screenshot(page, 'inspector-did-not-start');
    await page.close();

    // A panel whose script runs removes the message before it could show.
    const { panel } = await openInspector('dark', path.join(root, 'jest-f80'));
    assert.equal(await panel.page.locator('#sift-boot').count(), 0);
    await panel.page.close();
  });

  test('selecting a step by box, slider and buttons asks the host and shows it', async () => {
    const { panel } = await openInspector('dark', path.join(root, 'jest-f80'));
    const { page } = panel;
    await page.locator('#step-input input').fill('57');
    await page.locator('#step-input input').press('Enter');
    assert.deepEqual((await panel.waitForPost('select-step')).payload, { step: 57 });
    await page.waitForFunction(() => document.querySelector('#step-info')?.textContent?.startsWith('Step 57 '));
    await page.locator('#prev').click();
    await page.waitForFunction(() => document.querySelector('#step-info')?.textContent?.startsWith('Step 56 '));
    await page.locator('#step-slider').fill('9');
    await page.waitForFunction(() => document.querySelector('#step-info')?.textContent?.startsWith('Step 10 '));
    await page.locator('#latest').click();
    await page.waitForFunction(() => document.querySelector('#step-info')?.textContent?.startsWith('Step 120 '));
    const saved = await page.evaluate(() => (window as unknown as { __siftState: InspectorState }).__siftState);
    assert.equal(saved.view.step, 120);
    assert.equal(saved.runDir, path.join(root, 'jest-f80'));
    await page.close();
  });

  test('sorting and filtering by a score', async () => {
    const { panel } = await openInspector('dark', path.join(root, 'jest-f80'));
    const { page } = panel;
    await page.locator('#sort-key').click();
    await page.locator('#sort-key').getByRole('option', { name: 'Reference loss' }).click();
    await page.locator('#sort-dir').click();
    const values = async (): Promise<number[]> => (await page.locator('.chosen .card dd.sorted').allTextContents()).map(Number);
    await page.waitForFunction(() => document.querySelectorAll('.chosen .card dd.sorted').length === 16);
    const sorted = await values();
    assert.deepEqual(sorted, [...sorted].sort((a, b) => b - a), 'descending reference loss');
    await page.locator('#filter-key').click();
    await page.locator('#filter-key').getByRole('option', { name: 'Reference loss' }).click();
    // Cards show 3 significant digits: filter between two shown values so rounding cannot matter.
    const threshold = (sorted[5] + sorted[6]) / 2;
    await page.locator('#filter-min input').fill(threshold.toFixed(4));
    await page.waitForFunction(() => !document.querySelector('#shown-count')?.textContent?.startsWith('Showing 16 '));
    const kept = await values();
    assert.ok(kept.length >= 4 && kept.length <= 8, `kept ${kept.length}`);
    assert.ok(kept.every((v) => v >= sorted[6]));
    assert.match((await page.locator('#shown-count').textContent())!, new RegExp(`^Showing ${kept.length} of 16 picks$`));
    await page.close();
  });

  test('a click opens the detail: large image, scores with ranks, and why this pair', async () => {
    const { panel } = await openInspector('dark', path.join(root, 'jest-f80'));
    const { page } = panel;
    const caption = (await cardCaptions(panel))[9];
    await page.locator('.chosen .card').nth(9).click();
    await page.waitForSelector('dialog#detail[open]');
    assert.equal(await page.locator('.detail-caption').textContent(), caption);
    const request = await panel.waitForPost('images', 1);
    assert.equal((request.payload as { size: number }).size, 320);
    await page.waitForSelector('.detail-image img');
    const why = (await page.locator('#why').textContent())!;
    assert.match(why, /Drawn in chunk 3 of 4, after 8 batch-mates/);
    assert.match(why, /inferred/);
    assert.match(why, /not recorded for this step/);
    assert.equal(await page.locator('.scores-table tbody tr').count(), 4);
    await screenshot(page, 'inspector-detail-dark');
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.querySelector('dialog#detail')?.hasAttribute('open'));
    await page.close();
  });

  test('follow-live shows each new step the run records', async () => {
    const liveRoot = tmpDir();
    const dir = writeFixtureRun(liveRoot, { id: 'live', method: 'jest', steps: 100, pace: 2, status: 'running' });
    const { panel, model } = await openInspector('dark', dir);
    const { page } = panel;
    assert.match((await page.locator('#step-info').textContent())!, /^Step 50 /);
    await page.locator('#follow').click();
    assert.deepEqual((await panel.waitForPost('follow')).payload, { on: true });
    const lines = fs.readFileSync(path.join(dir, 'selections.jsonl'), 'utf8').trim().split('\n');
    const next = { ...JSON.parse(lines[lines.length - 1]), step: 51 };
    for (const reply of await model.appendSelection(next)) await panel.send(reply);
    await page.waitForFunction(() => document.querySelector('#step-info')?.textContent?.startsWith('Step 51 '));
    assert.match((await page.locator('#run-line').textContent())!, /training/);
    await page.close();
  });

  test('a uniform run shows its picks without scores', async () => {
    const { panel } = await openInspector('light', path.join(root, 'uniform'));
    const { page } = panel;
    assert.equal(await page.locator('.chosen .card dt').count(), 0);
    assert.match((await page.locator('#not-recorded').textContent())!, /draws its batches uniformly, so no candidates were scored or rejected/);
    await page.locator('.chosen .card').first().click();
    await page.waitForSelector('dialog#detail[open]');
    assert.match((await page.locator('#why').textContent())!, /picks uniformly at random/);
    await page.close();
  });

  test('a step without its super-batch says how often the run keeps one, and a button shows the nearest such step', async () => {
    const dir = writeFixtureRun(root, {
      id: 'every-5',
      method: 'jest',
      steps: 12,
      pace: 1,
      config: { superBatchEvery: 5 },
      extraSelection: (line, rng) =>
        line.step % 5 === 0 ? { rejected: { ids: Array.from({ length: 64 }, () => String(rng.int(3000))), learnability: Array.from({ length: 64 }, () => -0.5 + rng.next()) } } : {},
    });
    const { panel } = await openInspector('dark', dir);
    const { page } = panel;
    assert.match((await page.locator('#step-info').textContent())!, /^Step 12 /);
    const note = (await page.locator('#not-recorded').textContent())!;
    assert.match(note, /Not recorded at this step\. This run keeps the whole super-batch every 5 steps/);
    assert.match(note, /other 64 of the 80 candidates/);
    await page.locator('#show-recorded', { hasText: 'Show step 10' }).click();
    assert.deepEqual((await panel.waitForPost('select-step')).payload, { step: 10 });
    await page.waitForFunction(() => document.querySelector('#step-info')?.textContent?.startsWith('Step 10 '));
    await page.waitForFunction(() => document.querySelector('.rejected h2')?.textContent === 'Rejected candidates (64)');
    await page.waitForFunction(() => document.querySelectorAll('.rejected .card').length > 0);
    assert.equal(await page.locator('#not-recorded').count(), 0);
    assert.deepEqual(panel.errors, []);
    await page.close();
  });

  test('dataset text is shown as text (no HTML, no script); recorded rejects and contributions slot in', async () => {
    const { dir, hostile } = await writeHostileRun();
    const { panel } = await openInspector('dark', dir);
    const { page } = panel;
    const captions = await cardCaptions(panel);
    assert.ok(captions.includes(hostile[0]), `the caption shows as its characters: ${JSON.stringify(captions)}`);
    assert.equal(await page.locator('img[src="x"]').count(), 0, 'no element was made from the caption');
    const labels = await page.locator('.chosen .card .label').allTextContents();
    assert.ok(labels.includes(hostile[1]));
    assert.equal(await page.locator('#rejected-head, .rejected h2').first().textContent(), 'Rejected candidates (4)');
    assert.equal(await page.locator('.rejected .card').count(), 4);
    // Detail of the last pick: exact contributions, with the top batch-mates as thumbnails.
    await page.locator('.chosen .card').nth(5).click();
    await page.waitForSelector('#contributors .contributor');
    const why = (await page.locator('#why').textContent())!;
    assert.match(why, /Batch-mates that added the most/);
    assert.doesNotMatch(why, /inferred/);
    const contributorCaptions = await page.locator('#contributors .contributor-caption').allTextContents();
    assert.ok(contributorCaptions.includes(hostile[0]));
    await page.waitForSelector('#contributors img');
    await screenshot(page, 'inspector-contributions-dark');
    await page.locator('#contributors .contributor', { hasText: hostile[0] }).click();
    await page.waitForFunction((text) => document.querySelector('.detail-caption')?.textContent === text, hostile[0]);
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
    assert.deepEqual(panel.dialogs, [], 'no alert fired');
    assert.deepEqual(await panel.violations(), []);
    assert.deepEqual(panel.errors, []);
    await page.close();
  });
});

/**
 * A JSONL dataset whose captions and labels are HTML, and a run whose
 * selections lines carry rejected candidates and exact contributions.
 */
async function writeHostileRun(): Promise<{ dir: string; hostile: string[] }> {
  const base = tmpDir();
  const hostile = ['<img src=x onerror=alert(1)>', '<script>alert("label")</script>', '"><svg onload=alert(2)>', "'; alert(3); '"];
  const rows: string[] = [];
  fs.mkdirSync(path.join(base, 'data', 'images'), { recursive: true });
  for (let i = 0; i < 10; i++) {
    const rgba = new Uint8Array(24 * 24 * 4).map((_, k) => (k % 4 === 3 ? 255 : (k * (i + 3)) % 256));
    fs.writeFileSync(path.join(base, 'data', 'images', `${i}.png`), await Transformer.fromRgbaPixels(rgba, 24, 24).png());
    rows.push(JSON.stringify({ image: `images/${i}.png`, caption: i === 0 ? hostile[0] : i === 2 ? hostile[2] : `a plain caption ${i}`, label: i === 1 ? hostile[1] : i === 3 ? hostile[3] : `class ${i % 3}` }));
  }
  fs.writeFileSync(path.join(base, 'data', 'captions.jsonl'), rows.join('\n') + '\n');
  const dir = writeFixtureRun(base, {
    id: 'hostile',
    method: 'jest',
    steps: 3,
    pace: 1,
    batchSize: 6,
    filterRatio: 0.4,
    config: { data: path.join(base, 'data'), chunks: 3, superBatchEvery: 1 },
    extraSelection: (line) => ({
      ids: ['0', '1', '2', '3', '4', '5'],
      rejected: { ids: ['6', '7', '8', '9'], learner_loss: [2.1, 2.2, 2.3, 2.4], reference_loss: [2.5, 2.5, 2.5, 2.5], learnability: [-0.4, -0.3, -0.2, -0.1] },
      contributions: line.ids.map((_, k) => ({
        own: line.learnability![k],
        from: Array.from({ length: k < 2 ? 0 : k < 4 ? 2 : 4 }, (_, j) => [j, 0.1 * (j + 1) * (j % 2 === 0 ? 1 : -1)] as [number, number]),
      })),
    }),
  });
  return { dir, hostile };
}


