// How a validation problem is worded for a person. zod's own messages ("Too small: expected
// number to be >=1", "Invalid option: expected one of "a"|"b"") are written for programmers; a
// request, a run's settings or a settings file is checked with `PHRASED` instead, so every
// problem names its field and says what it takes ("steps must be at least 1"). A message a
// schema gives itself (`.regex(re, 'expected base64')`, a refinement's) is kept: zod only asks
// this map for the problems that have none.
import type { z } from 'zod';

/** A problem with one field: its dotted path (`config.steps`) and the sentence for a person. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** A field as a person names it: its own key, and its place in a list ("loraTargets item 2"). */
export function fieldLabel(path: readonly PropertyKey[] | undefined): string {
  const keys = (path ?? []).map((k) => (typeof k === 'number' ? k : String(k)));
  if (keys.length === 0) return 'the request';
  const last = keys.at(-1)!;
  if (typeof last !== 'number') return last;
  const owner = keys.slice(0, -1).findLast((k) => typeof k === 'string');
  return owner === undefined ? `item ${last + 1}` : `${owner} item ${last + 1}`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const quoteAll = (values: readonly unknown[]) => values.map((v) => (typeof v === 'string' ? `"${v}"` : String(v))).join(', ');

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'true or false',
  array: 'a list',
  object: 'a set of named fields',
  record: 'a set of named fields',
  null: 'empty (null)',
};

/** The sentence for one zod problem: the field's name and what it takes. */
function phrase(iss: z.core.$ZodRawIssue): string | undefined {
  const name = fieldLabel(iss.path);
  const i = iss as z.core.$ZodRawIssue & Record<string, unknown>;
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return `${name} is required`;
      return `${name} must be ${TYPE_NAMES[String(i.expected)] ?? String(i.expected)}`;
    case 'too_small': {
      const min = Number(i.minimum);
      if (i.origin === 'string') return min <= 1 ? `${name} must not be empty` : `${name} must be at least ${plural(min, 'character')} long`;
      if (i.origin === 'array' || i.origin === 'set') return `${name} needs at least ${plural(min, 'entry', 'entries')}`;
      return i.inclusive === false ? `${name} must be more than ${min}` : `${name} must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(i.maximum);
      if (i.origin === 'string') return `${name} must be at most ${plural(max, 'character')} long`;
      if (i.origin === 'array' || i.origin === 'set') return `${name} takes at most ${plural(max, 'entry', 'entries')}`;
      return i.inclusive === false ? `${name} must be less than ${max}` : `${name} must be at most ${max}`;
    }
    case 'invalid_value': {
      const values = (i.values as unknown[] | undefined) ?? [];
      return values.length === 1 ? `${name} must be ${quoteAll(values)}` : `${name} must be one of ${quoteAll(values)}`;
    }
    case 'not_multiple_of':
      return `${name} must be a multiple of ${String(i.divisor)}`;
    case 'invalid_format':
      return `${name} is not a valid ${i.format === 'regex' ? 'value' : String(i.format)}`;
    case 'unrecognized_keys': {
      const keys = (i.keys as string[] | undefined) ?? [];
      return `${quoteAll(keys)} ${keys.length === 1 ? 'is not a known field' : 'are not known fields'}`;
    }
    case 'invalid_union':
    case 'invalid_key':
    case 'invalid_element':
    case 'custom':
      return `${name} is not valid`;
    default:
      return undefined;
  }
}

/** Parse options that word every problem for a person: `schema.safeParse(value, PHRASED)`. */
export const PHRASED: z.core.ParseContext<z.core.$ZodIssue> = { error: phrase };

/**
 * zod's problems as field issues under `prefix` (e.g. ['config']). An unknown key is reported
 * by zod on the object holding it; here it is named by its own path.
 */
export function fieldIssues(issues: readonly { code: string; path: readonly PropertyKey[]; message: string }[], prefix: readonly string[] = []): FieldIssue[] {
  return issues.flatMap((i) => {
    const base = [...prefix, ...i.path.map(String)];
    const keys = i.code === 'unrecognized_keys' ? ((i as { keys?: string[] }).keys ?? []) : [];
    if (keys.length) return keys.map((k) => ({ path: [...base, k].join('.'), message: `"${k}" is not a known field` }));
    return [{ path: base.join('.'), message: i.message }];
  });
}

/** Several problems as one message: each sentence, in order. */
export function issuesText(issues: readonly { message: string }[]): string {
  return issues.map((i) => i.message).join('; ');
}
