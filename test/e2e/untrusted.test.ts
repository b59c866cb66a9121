/**
 * In an untrusted workspace Sift starts no run: the user is told why and how
 * to trust the folder, and nothing is written.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Workbench } from './workbench';

let workbench: Workbench | undefined;

after(async () => {
  await workbench?.close();
});

test('an untrusted workspace refuses to start a run and says how to trust it', { timeout: 180_000 }, async () => {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-e2e-untrusted-'));
  fs.writeFileSync(path.join(workspace, 'run.sift.json'), JSON.stringify({ data: '/etc', steps: 10 }));
  workbench = await Workbench.open({ workspace, workspaceTrust: true });
  // VS Code asks whether to trust the folder's authors: the user says no (restricted mode).
  await workbench.dialogButton("No, I don't trust the authors");
  await workbench.runCommand('Sift: Start Training Run…');
  const toast = await workbench.waitForNotification(/untrusted workspace/);
  assert.match((await toast.textContent()) ?? '', /Manage Workspace Trust/);
  await workbench.screenshot('09-untrusted');
  assert.equal(fs.existsSync(path.join(workspace, '.sift')), false, 'nothing was written');
});
