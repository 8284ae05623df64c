// Subcommand plumbing for the command line: each command declares its flags once (for
// node:util parseArgs and for its --help text), and argument mistakes become UsageErrors that
// name the flag and point at the command's --help.
import { parseArgs } from 'node:util';

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The placeholder shown in help, e.g. DIR or N. */
  value?: string;
  default?: string | boolean;
  description: string;
  multiple?: boolean;
}

export type Flags = Record<string, FlagSpec>;

export type FlagValues<F extends Flags> = {
  [K in keyof F]: F[K]['type'] extends 'boolean' ? boolean | undefined : F[K]['multiple'] extends true ? string[] | undefined : string | undefined;
};

export interface CliCommand<F extends Flags = Flags> {
  name: string;
  /** The program the command belongs to, for help and error text (default "autodidact"). */
  program?: string;
  summary: string;
  /** Synopsis after the command name, e.g. "--model NAME|DIR --input FILE.jsonl [options]". */
  synopsis: string;
  flags: F;
  /** Paragraphs printed after the flag list. */
  details?: string;
  /** Positional arguments allowed (default none). */
  positionals?: boolean;
  run(values: FlagValues<F>, positionals: string[]): Promise<number>;
}

/** Declare a command with its flag types checked. */
export function command<F extends Flags>(c: CliCommand<F>): CliCommand<F> {
  return c;
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const PROGRAM = 'autodidact';

export function helpText(c: CliCommand): string {
  const lines = [`usage: ${c.program ?? PROGRAM} ${c.name} ${c.synopsis}`, '', c.summary, ''];
  const entries = Object.entries({ ...c.flags, help: { type: 'boolean', short: 'h', description: 'show this help' } as FlagSpec });
  const left = entries.map(([name, f]) => `${f.short ? `-${f.short}, ` : '    '}--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  lines.push('options:');
  entries.forEach(([, f], i) => {
    const def = f.default !== undefined && f.type === 'string' ? ` (default: ${f.default})` : '';
    lines.push(`  ${left[i].padEnd(width)}${f.description}${def}`);
  });
  if (c.details) lines.push('', c.details.trim());
  return lines.join('\n') + '\n';
}

/** Parse argv for `c`; null when --help was asked for (the help has been printed). */
export function parseFor<F extends Flags>(c: CliCommand<F>, argv: string[]): { values: FlagValues<F>; positionals: string[] } | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, f] of Object.entries(c.flags)) {
    // parseArgs rejects keys present with the value undefined.
    options[name] = { type: f.type, ...(f.short && { short: f.short }), ...(f.default !== undefined && { default: f.default }), ...(f.multiple && { multiple: true }) };
  }
  // A negative number after an option that takes a value is that value (--steps -3), not an
  // option: joined as --steps=-3, so the flag's own check says what is wrong with it.
  const args: string[] = [];
  for (const a of argv) {
    const previous = args.at(-1);
    if (/^-\d/.test(a) && previous !== undefined && /^--[^=]+$/.test(previous) && options[previous.slice(2)]?.type === 'string') args[args.length - 1] = `${previous}=${a}`;
    else args.push(a);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: c.positionals ?? false });
  } catch (e) {
    throw new UsageError(describeParseError(e as Error & { code?: string }, c));
  }
  if (parsed.values.help) {
    process.stdout.write(helpText(c as unknown as CliCommand));
    return null;
  }
  return { values: parsed.values as FlagValues<F>, positionals: parsed.positionals };
}

function describeParseError(e: Error & { code?: string }, c: CliCommand<Flags>): string {
  const quoted = /'([^']+)'/.exec(e.message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const known = Object.keys(c.flags).map((f) => `--${f}`);
      return `unknown option ${quoted ?? ''}${known.length ? ` (options: ${known.join(', ')})` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      // e.g. "Option '--model <value>' argument missing"
      return quoted ? `option ${quoted.split(' ')[0]} needs a value` : e.message;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${quoted ? `'${quoted}'` : ''}`.trim();
    default:
      return e.message;
  }
}

/** The value of a required string flag. */
export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** An integer flag within [min, max]; `fallback` when absent. */
export function intFlag(values: Record<string, unknown>, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${name} must be ${range}, got "${String(v)}"`);
  }
  return n;
}

/** A flag restricted to a few words. */
export function choiceFlag<T extends string>(values: Record<string, unknown>, name: string, choices: readonly T[], fallback: T): T {
  const v = values[name];
  if (v === undefined) return fallback;
  if (!choices.includes(v as T)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${String(v)}"`);
  return v as T;
}

/** A number flag within [min, max); undefined when absent. */
export function numberFlag(values: Record<string, unknown>, name: string, min: number, maxExclusive: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < min || n >= maxExclusive) {
    throw new UsageError(`--${name} must be a number ≥ ${min} and < ${maxExclusive}, got "${String(v)}"`);
  }
  return n;
}

/** Exactly `n` positional arguments, named in the message when missing or extra. */
export function positionalArgs(positionals: string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) throw new UsageError(`missing ${names.slice(positionals.length).join(' ')}`);
  if (positionals.length > names.length) throw new UsageError(`unexpected argument '${positionals[names.length]}'`);
  return positionals;
}
