/**
 * Screenshots of the dashboard and the batch inspector on real run folders,
 * in light and dark themes (and the inspector's detail of the last pick), through the same headless-Chromium harness the
 * webview tests use (the host side is the real DashboardModel/InspectorModel).
 *
 *   node --import tsx scripts/panel-screenshots.ts --inspect RUN_DIR RUN_DIR... [--out test-results/real]
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DashboardModel } from '../src/panels/dashboard';
import { InspectorModel } from '../src/panels/inspector';
import { ThumbnailService } from '../src/panels/thumbnails';
import { parseDashboardWebviewMessage, parseInspectorWebviewMessage } from '../src/protocol/webview';
import { launch, openPanel, startServer, type PanelPage } from '../test/webview/harness';

const { values, positionals } = parseArgs({ options: { inspect: { type: 'string' }, out: { type: 'string', default: 'test-results/real' } }, allowPositionals: true });

async function main(): Promise<void> {
  if (!values.inspect || positionals.length === 0) throw new Error('usage: panel-screenshots.ts --inspect RUN_DIR RUN_DIR...');
  fs.mkdirSync(values.out!, { recursive: true });
  const server = await startServer();
  const browser = await launch();
  const thumbnails = new ThumbnailService();
  try {
    for (const theme of ['dark', 'light'] as const) {
      const dashboard = new DashboardModel({ heatmapIntervalMs: 0 });
      for (const dir of positionals) await dashboard.addRun(dir);
      const page: PanelPage = await openPanel(browser, server.origin, 'dashboard', theme, async (raw, panel) => {
        const parsed = parseDashboardWebviewMessage(raw);
        if (!parsed.ok) throw new Error(parsed.problem);
        if (parsed.message.type === 'ready') await panel.send(await dashboard.snapshot(parsed.message.payload.view));
        if (parsed.message.type === 'view') for (const reply of await dashboard.setView(parsed.message.payload.view)) await panel.send(reply);
      });
      await page.page.waitForTimeout(1500);
      await page.page.screenshot({ path: path.join(values.out!, `dashboard-${theme}.png`), fullPage: true });
      await page.page.close();

      const inspector = new InspectorModel(values.inspect, { thumbnails });
      const inspectorPage = await openPanel(browser, server.origin, 'inspector', theme, async (raw, panel) => {
        const parsed = parseInspectorWebviewMessage(raw);
        if (!parsed.ok) throw new Error(parsed.problem);
        const message = parsed.message;
        if (message.type === 'ready') for (const reply of await inspector.snapshot(message.payload.view)) await panel.send(reply);
        if (message.type === 'select-step') for (const reply of await inspector.selectStep(message.payload.step)) await panel.send(reply);
        if (message.type === 'images') await panel.send(await inspector.images(message.payload.ids, message.payload.size));
      });
      await inspectorPage.page.waitForSelector('.card img.thumb');
      await inspectorPage.page.waitForTimeout(1000);
      await inspectorPage.page.screenshot({ path: path.join(values.out!, `inspector-${theme}.png`), fullPage: true });
      // The detail of the last pick: drawn last, so the most batch-mates came before it.
      await inspectorPage.page.locator('.chosen .card').last().click();
      await inspectorPage.page.waitForSelector('#why');
      await inspectorPage.page.waitForTimeout(1000);
      await inspectorPage.page.screenshot({ path: path.join(values.out!, `inspector-detail-${theme}.png`), fullPage: true });
      await inspectorPage.page.close();
    }
  } finally {
    await browser.close();
    await server.close();
    await thumbnails.close();
  }
  process.stdout.write(`Screenshots in ${values.out}\n`);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
