/**
 * The checks every message and saved output is put through by its receiver:
 * the worker's commands and events, the panels' messages and the notebook's
 * outputs. A problem names the field, what it held and what was expected, so
 * a mismatch between two builds reads as such. No Node or editor imports:
 * the webview bundles use it too.
 */

export type Parsed<T> = { ok: true; message: T } | { ok: false; problem: string };

export type Fields = Record<string, unknown>;

export const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);
export const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
export const isStep = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;
export const isString = (value: unknown): value is string => typeof value === 'string';
export const isNullableNumber = (value: unknown): boolean => value === null || isFiniteNumber(value);

/** A value as it appears in a problem: JSON, cut at 120 characters. */
export const describe = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

/** Checks fields one by one and keeps the first problem, naming the field. */
export class Check {
  problem: string | undefined;

  constructor(
    private readonly value: Fields,
    private readonly what: string,
  ) {}

  field(name: string, ok: (value: unknown) => boolean, expected: string, optional = false): this {
    const value = this.value[name];
    if (this.problem === undefined && !(optional && value === undefined) && !ok(value)) {
      this.problem = `${this.what}: "${name}" is ${describe(value)}; expected ${expected}.`;
    }
    return this;
  }

  /** A nested object checked by `inner`, whose problem (if any) becomes this one's. */
  nested(name: string, inner: (value: unknown, what: string) => string | undefined, optional = false): this {
    const value = this.value[name];
    if (this.problem === undefined && !(optional && value === undefined)) this.problem = inner(value, `${this.what}.${name}`);
    return this;
  }

  /** The "protocol" field must be `expected`; otherwise the two sides come from different builds, and `fix` says what to do. */
  version(expected: number, fix: string): this {
    const version = this.value.protocol;
    if (this.problem === undefined && version !== expected) {
      this.problem = `${this.what}: protocol version ${describe(version)}; this side speaks ${expected}. ${fix}`;
    }
    return this;
  }

  get ok(): boolean {
    return this.problem === undefined;
  }

  result<T>(): Parsed<T> {
    return this.problem === undefined ? { ok: true, message: this.value as T } : { ok: false, problem: this.problem };
  }
}

/** Runs `build` on an object; returns its problem, or one saying it is not an object. */
export function checkObject(value: unknown, what: string, build: (check: Check, value: Fields) => void): string | undefined {
  if (!isObject(value)) return `${what} is ${describe(value)}; expected an object.`;
  const check = new Check(value, what);
  build(check, value);
  return check.problem;
}

/** An object's fields as a table: [name, check, what was expected, optional?]. */
export const checkFields = (value: unknown, what: string, fields: [string, (v: unknown) => boolean, string, boolean?][]): string | undefined =>
  checkObject(value, what, (check) => {
    for (const [name, ok, expected, optional] of fields) check.field(name, ok, expected, optional);
  });

export function checkArray(value: unknown, what: string, each: (item: unknown, what: string) => string | undefined): string | undefined {
  if (!Array.isArray(value)) return `${what} is ${describe(value)}; expected an array.`;
  for (let i = 0; i < value.length; i++) {
    const problem = each(value[i], `${what}[${i}]`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
