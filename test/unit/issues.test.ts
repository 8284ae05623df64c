// Validation problems are worded for a person (issue 15.12: a zod message never reaches a person
// raw): each names its field and what it takes, and a schema's own message is kept.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PHRASED, fieldIssues, fieldLabel } from '../../main/issues.ts';
import { checkRunConfig } from '../../main/engine/rl/config.ts';

// What zod writes by itself: none of it may reach a person.
const RAW_ZOD = /Too (small|big)|Invalid (input|option)|expected .* received|Unrecognized key|>=|<=/;

const issuesOf = (schema: z.ZodType, value: unknown) => {
  const r = schema.safeParse(value, PHRASED);
  if (r.success) throw new Error('expected a problem');
  return fieldIssues(r.error.issues);
};

describe('worded validation problems', () => {
  const schema = z
    .object({
      steps: z.number().int().min(1),
      topP: z.number().gt(0).max(1),
      name: z.string().min(1).max(5),
      answerFormat: z.enum(['auto', 'math']),
      loraTargets: z.array(z.enum(['q_proj', 'v_proj'])).min(1),
      data: z.string().regex(/^[a-z]*$/, 'expected base64'),
      nested: z.object({ prompt: z.string() }),
    })
    .strict();

  it('names each field and says what it takes', () => {
    const issues = issuesOf(schema, { steps: 0.5, topP: 0, name: 'toolong', answerFormat: 'gsm', loraTargets: ['x_proj'], data: 'A', nested: {}, extra: 1 });
    expect(issues).toEqual([
      { path: 'steps', message: 'steps must be a whole number' },
      { path: 'topP', message: 'topP must be more than 0' },
      { path: 'name', message: 'name must be at most 5 characters long' },
      { path: 'answerFormat', message: 'answerFormat must be one of "auto", "math"' },
      { path: 'loraTargets.0', message: 'loraTargets item 1 must be one of "q_proj", "v_proj"' },
      // A schema's own message stays.
      { path: 'data', message: 'expected base64' },
      { path: 'nested.prompt', message: 'prompt is required' },
      { path: 'extra', message: '"extra" is not a known field' },
    ]);
    expect(issuesOf(schema.partial(), { steps: 0, name: '', loraTargets: [] }).map((i) => i.message)).toEqual([
      'steps must be at least 1',
      'name must not be empty',
      'loraTargets needs at least 1 entry',
    ]);
    for (const i of issues) expect(i.message).not.toMatch(RAW_ZOD);
  });

  it('labels a field by its own key, and a list entry by its place', () => {
    expect(fieldLabel(['config', 'steps'])).toBe('steps');
    expect(fieldLabel(['stopStrings', 2])).toBe('stopStrings item 3');
    expect(fieldLabel([])).toBe('the request');
  });
});

describe('a run configuration checked for the form', () => {
  it('gives every problem at its setting: each setting, then the checks across settings', () => {
    expect(checkRunConfig({ steps: 0, answerFormat: 'latex' }).problems).toEqual([
      { setting: 'steps', message: 'steps must be at least 1' },
      { setting: 'answerFormat', message: 'answerFormat must be one of "auto", "math", "gsm8k", "multiple-choice"' },
    ]);
    expect(checkRunConfig({ votes: 4, trainSamples: 8 }).problems).toEqual([{ setting: 'trainSamples', message: 'trainSamples (8) cannot exceed votes (4)' }]);
    expect(checkRunConfig({ klTarget: 0.1, klCoef: 0 }).problems).toEqual([{ setting: 'klCoef', message: 'an adaptive KL coefficient (klTarget > 0) needs klCoef > 0 to start from, got 0' }]);
    // A method's own check, at its setting.
    expect(checkRunConfig({ method: 'semantic-clusters', clusterBandLow: 0.8, clusterBandHigh: 0.3 }).problems).toEqual([
      { setting: 'clusterBandLow', message: 'clusterBandLow (0.8) cannot exceed clusterBandHigh (0.3)' },
    ]);
    // Strict: a key that is no setting is named.
    expect(checkRunConfig({ stepz: 3 }, { strict: true }).problems).toEqual([{ setting: 'stepz', message: '"stepz" is not a run setting' }]);
    expect(checkRunConfig({ votes: 4, trainSamples: 4 })).toMatchObject({ config: { votes: 4, trainSamples: 4 } });
  });
});
