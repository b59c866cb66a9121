/**
 * Writes schemas/sift-notebook-cell.schema.json, the JSON schema the editor
 * applies to the code cells of `*.siftnb` notebooks (package.json,
 * contributes.jsonValidation with fileMatch "*.siftnb": the JSON language
 * server matches a cell by its notebook's path, the cell's own URI fragment
 * dropped). A cell is one of three shapes, told apart by its keys:
 *
 *   {"branch": …}   a branch of a run;   {"compare": […]}   a comparison;
 *   {"cells": […]}  the whole .siftnb, when opened as text (its outline only);
 *   anything else   a run configuration: the *.sift.json settings (the same
 *                   properties, from scripts/config-schema.ts) plus "label"
 *                   and "kind".
 *
 * Generated at build time; a unit test checks the file is current.
 *
 *     node --import tsx scripts/notebook-schema.ts [--check]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { comparableMetrics } from '../src/core/runs/compare';
import { configSchema } from './config-schema';

export const notebookSchemaFile = path.join(__dirname, '..', 'schemas', 'sift-notebook-cell.schema.json');

type Schema = Record<string, unknown>;

export function notebookCellSchema(): Schema {
  const { properties } = configSchema() as { properties: Record<string, Schema> };
  const settings = Object.fromEntries(Object.entries(properties).filter(([key]) => key !== '$schema'));
  const label: Schema = {
    type: 'string',
    pattern: '^[A-Za-z0-9_.-]+$',
    description: 'Names the run this cell makes: a cell below refers to it as "@label" (in "reference", "branch" or "compare"). Letters, digits, _ . -',
  };
  const runRef: Schema = { type: 'string', description: '"@label" of a cell above (the run it made), or a run folder.' };
  const withNotebookRefs = (all: Record<string, Schema>): Record<string, Schema> => ({
    ...all,
    reference: { ...all.reference, description: `${String(all.reference.description)} In a notebook, "@label" of a reference cell above.` },
  });
  const branchKeys: Record<string, Schema> = {
    branch: { ...runRef, description: 'Makes this a branch cell: the run to branch, "@label" of a cell above or a run folder.' },
    at_step: { type: 'integer', minimum: 0, description: 'The checkpoint step of that run to start from (one it kept: every checkpointEvery steps, and where it paused).' },
    set: { type: 'object', description: 'The settings the branch changes (steps, filterRatio, learningRate…).', properties: withNotebookRefs(settings), additionalProperties: false },
    label,
  };
  const compareKeys: Record<string, Schema> = {
    compare: { type: 'array', items: runRef, minItems: 1, description: 'Makes this a compare cell: the runs to compare ("@label"s or run folders). The uniform one is the baseline.' },
    target_metric: { type: 'string', enum: [...comparableMetrics], default: 'i2t_r1', description: 'The eval metric whose target the runs race to. Default: "i2t_r1".' },
    target: { type: 'number', description: "The value to reach. Default: the uniform run's final value." },
  };
  const branch: Schema = { type: 'object', properties: branchKeys, required: ['branch', 'at_step'], additionalProperties: false };
  const compare: Schema = { type: 'object', properties: compareKeys, required: ['compare'], additionalProperties: false };
  const run: Schema = {
    type: 'object',
    properties: {
      label,
      kind: { type: 'string', enum: ['train', 'reference'], default: 'train', description: '"reference" trains a reference model on curated data ("data" defaults to builtin:curated); "train" (the default) a run.' },
      ...withNotebookRefs(settings),
      // Offered by completion only: either key turns the cell into that kind (the `if`s above route it).
      branch: branchKeys.branch,
      compare: compareKeys.compare,
    },
    additionalProperties: false,
  };
  // The schema is matched by file name, so a .siftnb opened as text gets it too: the whole file is then checked only for its outline.
  const notebookFile: Schema = {
    type: 'object',
    properties: {
      version: { type: 'integer', description: 'The .siftnb format version.' },
      cells: { type: 'array', items: { type: 'object', required: ['kind'] }, description: 'The cells; each code cell is checked against this schema when the file is open in the notebook editor.' },
      metadata: { type: 'object' },
    },
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Sift notebook cell',
    description: 'A code cell of a Sift notebook: a run configuration (the settings of a *.sift.json file, plus "label" and "kind"), {"branch": …, "at_step": N, "set": {…}} or {"compare": […]}.',
    type: 'object',
    if: { required: ['branch'] },
    then: branch,
    else: { if: { required: ['compare'] }, then: compare, else: { if: { required: ['cells'] }, then: notebookFile, else: run } },
  };
}

export const notebookSchemaText = (): string => `${JSON.stringify(notebookCellSchema(), null, 2)}\n`;

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  const text = notebookSchemaText();
  const current = fs.existsSync(notebookSchemaFile) ? fs.readFileSync(notebookSchemaFile, 'utf8') : '';
  if (process.argv.includes('--check')) {
    if (current !== text) {
      process.stderr.write(`${notebookSchemaFile} is out of date: run node --import tsx scripts/notebook-schema.ts\n`);
      process.exit(1);
    }
  } else if (current !== text) {
    fs.mkdirSync(path.dirname(notebookSchemaFile), { recursive: true });
    fs.writeFileSync(notebookSchemaFile, text);
  }
}
