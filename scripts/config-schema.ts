/**
 * Writes schemas/sift-config.schema.json, the JSON schema the editor applies
 * to `*.sift.json` files (package.json, contributes.jsonValidation): every
 * setting of src/core/train/config.ts with its help text, default, type,
 * enum and bounds, so a config gets completion, hover docs and a squiggle
 * under a bad value. Generated at build time; a unit test checks the file
 * matches the config fields.
 *
 *     node --import tsx scripts/config-schema.ts [--check]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configHelp, configKeys, defaultTrainConfig, fieldKinds, type FieldKind } from '../src/core/train/config';

export const schemaFile = path.join(__dirname, '..', 'schemas', 'sift-config.schema.json');

function typeOf(kind: FieldKind): Record<string, unknown> {
  switch (kind.kind) {
    case 'string':
      return { type: 'string' };
    case 'int':
      return { type: 'integer', minimum: kind.min };
    case 'number':
      return { type: 'number', minimum: kind.min, maximum: kind.max };
    case 'enum':
      return { type: 'string', enum: [...kind.values] };
    case 'nullable-number':
      return { type: ['number', 'null'], ...(kind.min !== undefined ? { minimum: kind.min } : {}), ...(kind.max !== undefined ? { maximum: kind.max } : {}) };
    default: {
      const unknown: never = kind;
      throw new Error(`unknown field kind ${JSON.stringify(unknown)}`);
    }
  }
}

const sentence = (text: string): string => `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;

export function configSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {
    $schema: { type: 'string', description: 'The schema of this file (optional: the editor applies it to every *.sift.json).' },
  };
  for (const key of configKeys) {
    const fallback = defaultTrainConfig[key];
    properties[key] = {
      ...typeOf(fieldKinds[key]),
      description: `${sentence(configHelp[key])} Default: ${JSON.stringify(fallback)}.`,
      default: fallback,
    };
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Sift run configuration',
    description: 'Settings of a Sift training run (the same names as the flags of `sift train`, in camelCase). Anything left out takes its default.',
    type: 'object',
    properties,
    additionalProperties: false,
  };
}

export const schemaText = (): string => `${JSON.stringify(configSchema(), null, 2)}\n`;

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  const text = schemaText();
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(schemaFile) ? fs.readFileSync(schemaFile, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${schemaFile} is out of date: run node --import tsx scripts/config-schema.ts\n`);
      process.exit(1);
    }
  } else {
    fs.mkdirSync(path.dirname(schemaFile), { recursive: true });
    if (!fs.existsSync(schemaFile) || fs.readFileSync(schemaFile, 'utf8') !== text) fs.writeFileSync(schemaFile, text);
  }
}
