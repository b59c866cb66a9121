/**
 * The commands of the palette, the Runs view's menus and the editor title.
 * Each asks for what it needs (quick picks, an input box), checks it with the
 * engine's own validation, and hands the run to the RunManager; nothing here
 * trains, and nothing here blocks on more than a small file.
 */
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { listCheckpoints } from '../core/runs/checkpoint';
import { branchOverrides } from '../core/runs/lineage';
import { ConfigError, readConfigFile, type TrainConfig } from '../core/train/config';
import { doctorMarkdown, nvidiaSmi, probeInChildProcess } from './doctor';
import type { Sift } from './extension';
import { displayPath, isResumable, type RunNode } from './present';
import { configTemplates, referenceRunConfig, runConfigFromFile, templateText } from './runConfig';
import { RunBusyError, type LiveRun, type RunRequest } from './runManager';
import type { LaunchInfo } from './notifications';
import { newNotebook } from './notebook';

const trustMessage =
  'no training run starts in an untrusted workspace: a run configuration can point the trainer at any file or folder on this machine, and a run writes where its configuration says. Trust this workspace to train in it.';

export function registerCommands(sift: Sift): vscode.Disposable[] {
  const commands = new SiftCommands(sift);
  const register = (id: string, handler: (...args: unknown[]) => unknown): vscode.Disposable =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      sift.log.debug(`${id}(${args.map((a) => (a && typeof a === 'object' && 'dir' in a ? `{dir: ${String((a as { dir: unknown }).dir)}}` : Array.isArray(a) ? `[${a.length}]` : typeof a)).join(', ')})`);
      try {
        await handler(...args);
      } catch (error) {
        commands.fail(error);
      }
    });
  return [
    register('sift.startRun', (arg) => commands.startRun(arg)),
    register('sift.trainReference', () => commands.trainReference()),
    register('sift.pauseRun', (arg, args) => commands.pause(arg, args)),
    register('sift.resumeRun', (arg, args) => commands.resume(arg, args)),
    register('sift.stopRun', (arg, args) => commands.stop(arg, args)),
    register('sift.branchRun', (arg) => commands.branch(arg)),
    register('sift.openDashboard', (arg, args) => commands.openDashboard(arg, args)),
    register('sift.inspectBatch', (arg) => commands.inspectBatch(arg)),
    register('sift.compareRuns', (arg, args) => commands.compare(arg, args)),
    register('sift.exportSubset', (arg) => commands.exportSubset(arg)),
    register('sift.checkGpuSetup', () => commands.checkGpuSetup()),
    register('sift.newRunConfig', () => commands.newRunConfig()),
    register('sift.revealRunFolder', (arg) => commands.reveal(arg)),
    register('sift.deleteRun', (arg, args) => commands.delete(arg, args)),
    register('sift.refreshRuns', () => sift.tree.refreshNow()),
    register('sift.showLog', () => sift.log.show()),
    register('sift.newNotebook', () => newNotebook(sift)),
  ];
}

class SiftCommands {
  constructor(private readonly sift: Sift) {}

  /** An error a command did not expect: said in the user's terms, with the log for the rest. */
  fail(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof ConfigError) {
      this.sift.log.warn(message);
      void vscode.window.showErrorMessage(`Sift: ${message}`);
      return;
    }
    this.sift.log.error(error instanceof Error ? (error.stack ?? message) : message);
    void vscode.window.showErrorMessage(`Sift: ${message}`, 'Show Log').then((choice) => {
      if (choice) this.sift.log.show();
    });
  }

  // ---- starting runs --------------------------------------------------------

  async startRun(arg: unknown): Promise<void> {
    const workspace = this.requireWorkspace();
    if (!workspace || !this.requireTrust()) return;
    const file = arg instanceof vscode.Uri ? arg.fsPath : await this.pickConfig('Start a training run from which configuration?');
    if (!file) return;
    // Unsaved edits would otherwise be trained as the file was.
    await vscode.workspace.textDocuments.find((doc) => doc.uri.fsPath === file && doc.isDirty)?.save();
    let config: TrainConfig;
    try {
      config = runConfigFromFile(file, { settings: this.sift.settings, workspace });
    } catch (error) {
      if (error instanceof ConfigError) return this.configError(file, error.message);
      throw error;
    }
    this.launch({ kind: 'new', config }, workspace, { configFile: file, label: `a run from ${path.basename(file)}` });
  }

  async trainReference(): Promise<void> {
    const workspace = this.requireWorkspace();
    if (!workspace || !this.requireTrust()) return;
    const defaults: vscode.QuickPickItem & { file?: string } = { label: '$(symbol-constant) Built-in defaults', description: 'the default model and schedule' };
    const files = await this.configFiles();
    const source = await vscode.window.showQuickPick([defaults, ...files.map((file) => ({ label: path.basename(file), description: displayPath(file, workspace), file }))], {
      title: 'Train Reference Model (1/2)',
      ignoreFocusOut: true,
      placeHolder: 'Take the model shape and schedule from… (method and data are the reference’s own)',
    });
    if (!source) return;
    const builtin = { label: 'builtin:curated', description: 'the built-in generator’s clean captions' };
    const choose = { label: '$(folder-opened) Choose a folder or file…', description: 'a captions folder, .jsonl, .csv, .tar or shard folder' };
    const data = await vscode.window.showQuickPick([builtin, choose], { title: 'Train Reference Model (2/2)', placeHolder: 'Curated (clean) data to train the reference on', ignoreFocusOut: true });
    if (!data) return;
    let curated = builtin.label;
    if (data === choose) {
      const picked = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: true, canSelectMany: false, defaultUri: vscode.Uri.file(workspace), openLabel: 'Use as curated data' });
      if (!picked?.[0]) return;
      curated = picked[0].fsPath;
    }
    const file = source.file;
    let config: TrainConfig;
    try {
      config = referenceRunConfig(file ? readConfigFile(file) : undefined, file ? path.basename(file) : 'settings', curated, { settings: this.sift.settings, workspace });
    } catch (error) {
      if (error instanceof ConfigError) return this.configError(file, error.message);
      throw error;
    }
    this.launch({ kind: 'new', config, reference: true }, workspace, { configFile: file, reference: true, label: 'a reference model' });
  }

  /** Starts a worker; when another run trains, asks before starting a second one alongside. */
  private launch(request: RunRequest, cwd: string, info: LaunchInfo, alongside = false): void {
    let run: LiveRun;
    try {
      run = this.sift.manager.start(request, { cwd, alongside });
    } catch (error) {
      if (!(error instanceof RunBusyError)) throw error;
      const busy = error.training.run?.id ?? 'a new run';
      void vscode.window
        .showWarningMessage(`${busy} is training. Start ${info.label} alongside it? Each run has its own worker; both will train more slowly.`, { modal: true }, 'Start Alongside')
        .then((choice) => {
          if (choice) this.launch(request, cwd, info, true);
        });
      return;
    }
    this.sift.notifications.launched(run, info);
    void vscode.commands.executeCommand('sift.runs.focus');
  }

  // ---- controlling runs -----------------------------------------------------

  async pause(arg: unknown, args: unknown): Promise<void> {
    const runs = await this.liveRuns(arg, args, (run) => run.state === 'running' || run.state === 'starting', 'Pause which run?', 'No run is training.');
    for (const run of runs) this.sift.manager.pause(run);
  }

  async stop(arg: unknown, args: unknown): Promise<void> {
    const runs = await this.liveRuns(arg, args, (run) => run.state !== 'finished' && run.state !== 'failed', 'Stop which run? (checkpointed; Resume Run continues it)', 'No run is open in this window.');
    for (const run of runs) this.sift.manager.stop(run);
  }

  async resume(arg: unknown, args: unknown): Promise<void> {
    let nodes = this.sift.selectedNodes(arg, args).filter(isResumable);
    if (nodes.length === 0) {
      if (arg !== undefined && this.sift.resolveNode(arg)) return void vscode.window.showInformationMessage('Sift: that run cannot be resumed (it finished, or another process trains it). Branch it to train on.');
      await this.sift.tree.refreshNow();
      const candidates = this.sift.tree.all.filter(isResumable);
      if (candidates.length === 0) return void vscode.window.showInformationMessage('Sift: no run is paused, stopped or interrupted.');
      // A run paused in this window is what "resume" most likely means; else the only candidate; else ask.
      const pausedHere = candidates.filter((node) => node.live);
      const only = pausedHere.length === 1 ? pausedHere : candidates.length === 1 ? candidates : undefined;
      const picked = only ? { node: only[0] } : await vscode.window.showQuickPick(candidates.map((node) => this.runItem(node)), { title: 'Resume which run?' });
      if (!picked) return;
      nodes = [picked.node];
    }
    for (const node of nodes) {
      const live = this.sift.manager.find(node.dir);
      if (live) {
        this.sift.manager.resume(live);
        continue;
      }
      const workspace = this.requireWorkspace();
      if (!workspace || !this.requireTrust()) return;
      this.launch({ kind: 'resume', runDir: node.dir }, workspace, { label: `${node.id} (resumed)` });
    }
  }

  async branch(arg: unknown): Promise<void> {
    const workspace = this.requireWorkspace();
    if (!workspace || !this.requireTrust()) return;
    await this.sift.tree.refreshNow();
    let node = this.sift.resolveNode(arg) ?? (this.sift.view.selection.length === 1 ? this.sift.view.selection[0] : undefined);
    if (!node) {
      const withCheckpoints = this.sift.tree.all.filter((candidate) => listCheckpoints(candidate.dir).length > 0);
      if (withCheckpoints.length === 0) return void vscode.window.showInformationMessage('Sift: no run has a checkpoint to branch from yet.');
      const picked = await vscode.window.showQuickPick(withCheckpoints.map((candidate) => this.runItem(candidate)), { title: 'Branch Run (1/3): which run?', ignoreFocusOut: true });
      if (!picked) return;
      node = picked.node;
    }
    // The steps of a multi-step flow stay open when the focus moves (a context menu hands it back to the tree).
    const kept = listCheckpoints(node.dir).reverse();
    if (kept.length === 0) return void vscode.window.showInformationMessage(`Sift: ${node.id} has no checkpoint yet. Checkpoints are written every checkpointEvery steps and on pause.`);
    const stepPick = await vscode.window.showQuickPick(
      kept.map((step, i) => ({ label: `step ${step}`, description: i === 0 ? 'newest' : undefined, step })),
      { title: `Branch ${node.id} (2/3): from which checkpoint?`, ignoreFocusOut: true },
    );
    if (!stepPick) return;
    const parentConfig = this.sift.tree.configOf(node.dir);
    const totalSteps = parentConfig?.steps ?? node.totalSteps;
    const suggestedSteps = stepPick.step < totalSteps ? totalSteps : stepPick.step + totalSteps;
    const parse = (text: string): Record<string, unknown> => {
      const overrides = branchOverrides(undefined, text.split(/[\s,]+/).filter((pair) => pair !== ''));
      const steps = overrides.steps ?? totalSteps;
      if (steps <= stepPick.step) throw new ConfigError(`The branch would train to step ${steps} but starts at ${stepPick.step}: set steps higher, e.g. steps=${suggestedSteps}.`);
      return overrides;
    };
    const text = await vscode.window.showInputBox({
      title: `Branch ${node.id} at step ${stepPick.step} (3/3): settings to change`,
      prompt: 'key=value pairs, space-separated (e.g. learningRate=0.001 method=uniform). Model shape and data stay the parent’s.',
      value: `steps=${suggestedSteps}`,
      ignoreFocusOut: true,
      validateInput: (value) => {
        try {
          parse(value);
          return undefined;
        } catch (error) {
          return (error as Error).message;
        }
      },
    });
    if (text === undefined) return;
    this.launch({ kind: 'branch', parentDir: node.dir, atStep: stepPick.step, overrides: parse(text) }, workspace, { label: `a branch of ${node.id} at step ${stepPick.step}` });
  }

  // ---- looking at runs ------------------------------------------------------

  async openDashboard(arg: unknown, args: unknown): Promise<void> {
    let nodes = this.sift.selectedNodes(arg, args).filter((node) => node.dir);
    if (nodes.length === 0) {
      const active = this.sift.manager.active?.run?.dir;
      const node = active ? this.sift.tree.find(active) : await this.pickRun('Open the dashboard of which run?');
      if (!node) return;
      nodes = [node];
    }
    await this.sift.panels.openDashboard(nodes.map((node) => node.dir));
  }

  async inspectBatch(arg: unknown): Promise<void> {
    const node = this.sift.resolveNode(arg) ?? this.sift.view.selection[0] ?? (await this.pickRun('Inspect the batches of which run?'));
    if (!node) return;
    const step = typeof (arg as { step?: unknown } | undefined)?.step === 'number' ? (arg as { step: number }).step : undefined;
    await this.sift.panels.inspectBatch(node.dir, step);
  }

  async compare(arg: unknown, args: unknown): Promise<void> {
    let dirs = this.sift.selectedNodes(arg, args).map((node) => node.dir);
    if (dirs.length < 2) {
      await this.sift.tree.refreshNow();
      const items = this.sift.tree.all.map((node) => ({ ...this.runItem(node), picked: dirs.includes(node.dir) }));
      if (items.length === 0) return void vscode.window.showInformationMessage('Sift: there are no runs to compare yet.');
      const picked = await vscode.window.showQuickPick(items, { title: 'Compare Runs', placeHolder: 'Pick the runs: the first is the baseline whose final recall the others must reach', canPickMany: true });
      if (!picked || picked.length === 0) return;
      dirs = picked.map((item) => item.node.dir);
    }
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-compare-'));
    // A child process: comparing reads every metrics line of every run.
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Sift: comparing runs…' }, () =>
      this.runCli(['compare', ...dirs, '--out', out]),
    );
    if (result.code !== 0) throw new Error(`The comparison failed: ${result.stderr.trim().split('\n').at(-1) ?? `exit code ${result.code}`}`);
    const markdown = fs.readFileSync(path.join(out, 'compare.md'), 'utf8');
    await this.showMarkdown('Sift run comparison', `# Sift: run comparison\n\n${markdown}\n\nThe same table as \`sift compare ${dirs.map((dir) => displayPath(dir, this.sift.workspace)).join(' ')}\`.\n`);
  }

  /** Asks for the rule, format and folder, then runs `sift export` (src/core/runs/export.ts) in a child process: it reads every selections line and writes every image. */
  async exportSubset(arg: unknown): Promise<void> {
    const workspace = this.requireWorkspace();
    if (!workspace) return;
    const node = this.sift.resolveNode(arg) ?? (await this.pickRun('Export the curated subset of which run?'));
    if (!node) return;
    if (this.sift.tree.configOf(node.dir)?.method === 'uniform') {
      return void vscode.window.showInformationMessage(`Sift: ${node.id} is a uniform run: its batches were drawn at random and nothing was selected, so it has no curated subset. Export a run trained with JEST (or another selecting method).`);
    }
    const title = `Export Curated Subset of ${node.id}`;
    type RuleItem = vscode.QuickPickItem & { flag?: string; prompt?: string; value?: string };
    const rule = await vscode.window.showQuickPick<RuleItem>(
      [
        { label: 'All picked pairs', description: 'every pair the run picked, ranked by how often and how early' },
        { label: 'Top fraction…', description: 'the best-ranked share of the picked pairs', flag: '--top-fraction', prompt: 'Share of the picked pairs to keep, above 0 and at most 1 (0.2 = the best-ranked fifth)', value: '0.2' },
        { label: 'Minimum learnability…', description: 'the picked pairs whose mean learnability (learner − reference loss) reaches a floor', flag: '--min-learnability', prompt: 'Lowest mean learnability to keep (a loss difference)', value: '0.5' },
      ],
      { title: `${title} (1/4): which pairs?`, ignoreFocusOut: true },
    );
    if (!rule) return;
    const ruleArgs: string[] = [];
    if (rule.flag) {
      const fraction = rule.flag === '--top-fraction';
      const value = await vscode.window.showInputBox({
        title: `${title} (2/4): ${rule.label.replace('…', '')}`,
        prompt: rule.prompt,
        value: rule.value,
        ignoreFocusOut: true,
        validateInput: (text) => {
          const number = Number(text);
          if (text.trim() === '' || !Number.isFinite(number)) return 'A number, please.';
          return fraction && !(number > 0 && number <= 1) ? 'Above 0 and at most 1.' : undefined;
        },
      });
      if (value === undefined) return;
      ruleArgs.push(rule.flag, value.trim());
    }
    const format = await vscode.window.showQuickPick(
      [
        { label: 'WebDataset shards', description: '000000.tar…: <key>.png|jpg, .txt, .json (open_clip, webdataset)', format: 'webdataset' },
        { label: 'Captions folder', description: 'captions.jsonl + images/ (sift train --data)', format: 'jsonl' },
      ],
      { title: `${title} (3/4): format`, ignoreFocusOut: true },
    );
    if (!format) return;
    const parent = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, defaultUri: vscode.Uri.file(workspace), openLabel: 'Export into this folder', title: `${title} (4/4): where? (a new folder is made inside)` });
    if (!parent?.[0]) return;
    const name = await vscode.window.showInputBox({
      title: `${title} (4/4): folder name`,
      prompt: `A new folder inside ${displayPath(parent[0].fsPath, workspace)}`,
      value: `${node.id}-curated`,
      ignoreFocusOut: true,
      validateInput: (text) => {
        if (text.trim() === '' || /[\\/]/.test(text)) return 'A folder name (no slashes).';
        const target = path.join(parent[0].fsPath, text.trim());
        const entries = fs.existsSync(target) ? fs.readdirSync(target) : [];
        return entries.length > 0 && !entries.includes('export.json') ? `${text.trim()} exists and is not empty: choose another name.` : undefined;
      },
    });
    if (name === undefined) return;
    const out = path.join(parent[0].fsPath, name.trim());
    const force = fs.existsSync(path.join(out, 'export.json'));
    if (force && (await vscode.window.showWarningMessage(`${name.trim()} holds an earlier export. Replace it?`, { modal: true }, 'Replace')) !== 'Replace') return;
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Sift: exporting the curated subset of ${node.id}…` }, () =>
      this.runCli(['export', node.dir, '--out', out, '--format', format.format, ...ruleArgs, ...(force ? ['--force'] : [])]),
    );
    if (result.code !== 0) {
      const reason = result.stderr.trim().replace(/^sift: /, '') || `exit code ${result.code}`;
      // Exit code 2: a problem the user can fix (the CLI's ConfigError), said as it is.
      throw result.code === 2 ? new ConfigError(reason) : new Error(`The export failed: ${reason}`);
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'export.json'), 'utf8')) as { counts: { exported: number; picked_pairs: number } };
    this.sift.log.info(`Exported ${manifest.counts.exported} pairs of ${node.dir} to ${out}.`);
    const choice = await vscode.window.showInformationMessage(`Sift: exported ${manifest.counts.exported} of the ${manifest.counts.picked_pairs} pairs ${node.id} picked to ${displayPath(out, workspace)} (export.json says how they were chosen).`, 'Reveal');
    if (choice) {
      const uri = vscode.Uri.file(out);
      await vscode.commands.executeCommand(vscode.workspace.getWorkspaceFolder(uri) ? 'revealInExplorer' : 'revealFileInOS', uri);
    }
  }

  async checkGpuSetup(): Promise<void> {
    const cli = this.sift.context.asAbsolutePath(path.join('dist', 'cli.js'));
    const [report, gpu] = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Sift: trying each TensorFlow.js backend in a separate process…' },
      () => Promise.all([probeInChildProcess(cli, { cwd: this.sift.workspace }), nvidiaSmi()]),
    );
    this.sift.log.info(`Backend check: ${report.attempts.map((a) => `${a.name} ${a.outcome}`).join(', ')}; auto picks ${report.chosen ?? 'nothing'}.`);
    await this.showMarkdown('Sift backend check', doctorMarkdown(report, { setting: this.sift.settings.backend, extensionPath: this.sift.context.extensionPath, ldLibraryPath: process.env.LD_LIBRARY_PATH, gpu }));
  }

  async newRunConfig(): Promise<void> {
    const workspace = this.requireWorkspace();
    if (!workspace) return;
    const template = await vscode.window.showQuickPick(
      configTemplates.map((t) => ({ label: t.label, detail: t.detail, template: t })),
      { title: 'New Run Configuration', placeHolder: 'Start from which template?' },
    );
    if (!template) return;
    const name = await vscode.window.showInputBox({
      title: 'New Run Configuration',
      prompt: 'File name, in the workspace folder (it must end in .sift.json)',
      value: template.template.name,
      validateInput: (value) => {
        if (!value.endsWith('.sift.json')) return 'The name must end in .sift.json (that is how Sift and its schema find run configurations).';
        if (fs.existsSync(path.resolve(workspace, value))) return `${value} exists already.`;
        return undefined;
      },
    });
    if (!name) return;
    const file = vscode.Uri.file(path.resolve(workspace, name));
    await vscode.workspace.fs.writeFile(file, Buffer.from(templateText(template.template)));
    await vscode.window.showTextDocument(file);
    void vscode.window.showInformationMessage(`Sift: ${name} is ready. Hover a setting for what it does; start it with the ▷ button in the editor title or Sift: Start Training Run….`);
  }

  async reveal(arg: unknown): Promise<void> {
    const node = this.sift.resolveNode(arg) ?? this.sift.view.selection[0];
    if (!node?.dir) return;
    const uri = vscode.Uri.file(node.dir);
    const inWorkspace = vscode.workspace.getWorkspaceFolder(uri) !== undefined;
    await vscode.commands.executeCommand(inWorkspace ? 'revealInExplorer' : 'revealFileInOS', uri);
  }

  async delete(arg: unknown, args: unknown): Promise<void> {
    const nodes = this.sift.selectedNodes(arg, args).filter((node) => node.dir);
    if (nodes.length === 0) return;
    const live = nodes.filter((node) => this.sift.manager.find(node.dir));
    if (live.length > 0) return void vscode.window.showWarningMessage(`Sift: ${live.map((n) => n.id).join(', ')} is open in this window. Stop it before deleting it.`);
    const dependants = nodes.flatMap((node) => node.children).filter((child) => !nodes.includes(child));
    const what = nodes.length === 1 ? `run ${nodes[0].id}` : `${nodes.length} runs (${nodes.map((n) => n.id).join(', ')})`;
    const warning = dependants.length > 0 ? ` Its branches ${dependants.map((c) => c.id).join(', ')} start from its checkpoints: they cannot be resumed without it.` : '';
    const choice = await vscode.window.showWarningMessage(`Delete ${what} and everything in its folder (metrics, checkpoints)?${warning}`, { modal: true }, 'Delete');
    if (choice !== 'Delete') return;
    for (const node of nodes) await vscode.workspace.fs.delete(vscode.Uri.file(node.dir), { recursive: true, useTrash: false });
    this.sift.log.info(`Deleted ${nodes.map((node) => node.dir).join(', ')}.`);
    await this.sift.tree.refreshNow();
  }

  // ---- helpers ----------------------------------------------------------------

  private requireWorkspace(): string | undefined {
    const workspace = this.sift.workspace;
    if (!workspace) {
      void vscode.window.showInformationMessage('Sift: open a folder first. Runs, configurations and the runs folder live in the workspace.', 'Open Folder').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.files.openFolder');
      });
    }
    return workspace;
  }

  private requireTrust(): boolean {
    if (vscode.workspace.isTrusted) return true;
    this.sift.log.warn('Refused to start a run: the workspace is not trusted.');
    void vscode.window.showWarningMessage(`Sift: ${trustMessage}`, 'Manage Workspace Trust').then((choice) => {
      if (choice) void vscode.commands.executeCommand('workbench.trust.manage');
    });
    return false;
  }

  private configError(file: string | undefined, message: string): void {
    this.sift.log.warn(message);
    const actions = file ? ['Open Configuration', 'Show Log'] : ['Show Log'];
    void vscode.window.showErrorMessage(`Sift: the run configuration is not valid: ${message}`, ...actions).then((choice) => {
      if (choice === 'Open Configuration' && file) void vscode.window.showTextDocument(vscode.Uri.file(file));
      if (choice === 'Show Log') this.sift.log.show();
    });
  }

  private async configFiles(): Promise<string[]> {
    const found = await vscode.workspace.findFiles('**/*.sift.json', '{**/node_modules/**,**/.sift/**}', 200);
    return found.map((uri) => uri.fsPath).sort();
  }

  /** A `*.sift.json` of the workspace, the `sift.defaultConfig` first; or a new one from a template. */
  private async pickConfig(title: string): Promise<string | undefined> {
    const workspace = this.sift.workspace!;
    const files = await this.configFiles();
    const preferred = this.sift.settings.defaultConfig ? path.resolve(workspace, this.sift.settings.defaultConfig) : undefined;
    if (preferred && !files.includes(preferred) && fs.existsSync(preferred)) files.unshift(preferred);
    files.sort((a, b) => Number(b === preferred) - Number(a === preferred));
    type Item = vscode.QuickPickItem & { file?: string };
    const items: Item[] = files.map((file) => {
      const folder = path.relative(workspace, path.dirname(file));
      const where = [folder.startsWith('..') ? path.dirname(file) : folder, file === preferred ? 'default (sift.defaultConfig)' : ''].filter((part) => part !== '');
      return { label: path.basename(file), description: where.join(' · '), file };
    });
    const create: Item = { label: '$(add) New configuration from a template…' };
    items.push(create);
    const picked = await vscode.window.showQuickPick(items, { title, placeHolder: files.length === 0 ? 'No *.sift.json in this workspace yet' : 'A run configuration (*.sift.json)' });
    if (picked === create) {
      await this.newRunConfig();
      return undefined;
    }
    return picked?.file;
  }

  private runItem(node: RunNode): vscode.QuickPickItem & { node: RunNode } {
    return { label: node.id, description: node.description, detail: displayPath(node.dir, this.sift.workspace), node };
  }

  private async pickRun(title: string): Promise<RunNode | undefined> {
    await this.sift.tree.refreshNow();
    const nodes = this.sift.tree.all;
    if (nodes.length === 0) {
      void vscode.window.showInformationMessage('Sift: there are no runs yet. Start one with Sift: Start Training Run….');
      return undefined;
    }
    return (await vscode.window.showQuickPick(nodes.map((node) => this.runItem(node)), { title }))?.node;
  }

  /** The live runs a command acts on: the chosen nodes', else the one that fits, else a pick among those that fit. */
  private async liveRuns(arg: unknown, args: unknown, fits: (run: LiveRun) => boolean, title: string, none: string): Promise<LiveRun[]> {
    const chosen = this.sift.selectedNodes(arg, args);
    if (arg !== undefined && chosen.length > 0) {
      const runs = chosen.map((node) => this.sift.manager.find(node.dir)).filter((run): run is LiveRun => run !== undefined && fits(run));
      if (runs.length === 0) void vscode.window.showInformationMessage(`Sift: ${none}`);
      return runs;
    }
    const candidates = this.sift.manager.runs.filter(fits);
    if (candidates.length <= 1) {
      if (candidates.length === 0) void vscode.window.showInformationMessage(`Sift: ${none}`);
      return candidates;
    }
    const picked = await vscode.window.showQuickPick(
      candidates.map((run) => ({ label: run.run?.id ?? 'new run', description: `${run.state} · step ${run.step}/${run.totalSteps}`, run })),
      { title },
    );
    return picked ? [picked.run] : [];
  }

  private runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const cli = this.sift.context.asAbsolutePath(path.join('dist', 'cli.js'));
    return new Promise((resolve) => {
      const child = fork(cli, args, { cwd: this.sift.workspace, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] });
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      child.on('error', (error) => resolve({ code: -1, stdout, stderr: error.message }));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** A report as a Markdown preview: written to the extension's storage, so there is no unsaved document to close. */
  private async showMarkdown(name: string, content: string): Promise<void> {
    const folder = this.sift.context.globalStorageUri;
    await vscode.workspace.fs.createDirectory(folder);
    const file = vscode.Uri.joinPath(folder, `${name}.md`);
    await vscode.workspace.fs.writeFile(file, Buffer.from(content));
    await vscode.commands.executeCommand('markdown.showPreview', file);
  }

}
