// Runs inside a VS Code that @vscode/test-cli downloads (.vscode-test.mjs);
// not run here (see npm run test:e2e for the tests this repository runs).
/* global suite, test */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS: the extension host loads it with mocha */
const assert = require('node:assert/strict');
const vscode = require('vscode');

suite('Sift in VS Code', () => {
  test('activates in a workspace with a *.sift.json and registers its commands', async () => {
    const extension = vscode.extensions.getExtension('sift.sift');
    assert.ok(extension, 'the extension is installed');
    await extension.activate();
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['sift.startRun', 'sift.pauseRun', 'sift.resumeRun', 'sift.stopRun', 'sift.branchRun', 'sift.openDashboard', 'sift.inspectBatch', 'sift.compareRuns', 'sift.checkGpuSetup', 'sift.newRunConfig', 'sift.trainReference']) {
      assert.ok(commands.includes(id), id);
    }
  });

  test('a run started on a config file trains to the end in its own worker', async () => {
    const folder = vscode.workspace.workspaceFolders[0].uri;
    await vscode.commands.executeCommand('sift.startRun', vscode.Uri.joinPath(folder, 'quick.sift.json'));
    const runs = vscode.Uri.joinPath(folder, '.sift', 'runs');
    const deadline = Date.now() + 100000;
    for (;;) {
      const entries = await vscode.workspace.fs.readDirectory(runs).then((e) => e, () => []);
      const statuses = await Promise.all(entries.map(async ([name]) => JSON.parse(Buffer.from(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(runs, name, 'run.json'))).toString()).status));
      if (statuses.includes('finished')) break;
      assert.ok(Date.now() < deadline, `no run finished within 100 s (statuses: ${statuses.join(', ')})`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
});
