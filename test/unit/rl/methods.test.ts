// The method registry: a method is one definition and one registration, and the run
// configuration, the API (runs.methods, runs.settings, runs.create), the command line's help and
// the loop's scorer all see it; runs stored before the registry still load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { helpText } from '../../../main/cli/args.ts';
import { runCommand } from '../../../main/cli/run.ts';
import { RUN_CONFIG_DEFAULTS, parseRunConfig } from '../../../main/engine/rl/config.ts';
import { scorerFor } from '../../../main/engine/rl/loop.ts';
import { RUN_METRICS } from '../../../main/engine/rl/metrics.ts';
import { BUILTIN_METHODS, listMethods, registerMethod } from '../../../main/engine/rl/methods/registry.ts';
import { defineMethod } from '../../../main/engine/rl/methods/types.ts';
import { parseStoredConfig, recordedRunConfig } from '../../../main/runs/start.ts';
import { type Harness, createHarness } from '../api/handlers-harness.ts';

// A method that exists only in this test: every sample earns `constantReward`.
const constant = defineMethod({
  id: 'test-constant',
  label: 'Constant (test)',
  description: 'Every sample earns the same reward.',
  pipeline: 'group-reward',
  settings: z.object({ constantReward: z.number().min(0).max(1).default(0.5).describe('The reward every sample earns') }),
  defaults: { klCoef: 0.005 },
  metrics: [{ key: 'test/constant', label: 'Constant', description: 'The reward every sample earned', chart: 'reward', unit: true }],
  scorer: (s) => (group) => ({ rewards: group.samples.map(() => s.constantReward), labeled: true, pseudoLabel: null, voteCounts: [], majorityRatio: 0, agreesWithLabel: group.samples.map(() => false), diagnostics: {} }),
});

// A run config as the app stored it before methods had a registry (every setting, flat).
const STORED_BEFORE_REGISTRY = {
  method: 'ttrl', seed: 0, steps: 40, promptsPerStep: 4, votes: 16, trainSamples: 8, maxNewTokens: 16, temperature: 1, topP: 1, topK: 0, stopStrings: [], answerFormat: 'auto',
  srtThreshold: 0, softReward: false, advantage: 'grpo', advantageEpsilon: 1e-6, mode: 'full', loraRank: 8, loraAlpha: 16, loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  lr: 1e-4, lrSchedule: 'cosine', warmupRatio: 0.03, minLrRatio: 0, weightDecay: 0.01, maxGradNorm: 1, klCoef: 0.001, klTarget: 0, klHorizon: 100, entropyCoef: 0, clipLow: 0.2, clipHigh: 0.2,
  valEvery: 10, valBeforeTrain: true, valSamples: 16, valTemperature: 0.6, valTopP: 0.95, checkpointEvery: 10, bestMetric: 'maj', collapseMajorityRatio: 0.95, collapseEntropy: 0.05, collapseValDrop: 0.1,
  model: 'tiny-arith', dataset: 'arithmetic', device: 'cpu', difficulty: 1,
};

const BUILTIN = BUILTIN_METHODS.map((m) => m.id).join(', ');

describe('the built-in methods', () => {
  it('TTRL and SRT are the first entries, SRT with its own settings', () => {
    expect(listMethods().slice(0, 2).map((m) => m.id)).toEqual(['ttrl', 'srt']);
    const srt = listMethods()[1];
    expect(Object.keys(srt.settings.shape)).toEqual(['srtThreshold', 'softReward']);
    expect(RUN_CONFIG_DEFAULTS).toMatchObject({ method: 'ttrl', srtThreshold: 0, softReward: false, klCoef: 0.001 });
  });

  it('a config stored before the registry still loads, with the same settings', () => {
    // Read back as stored (checked when it was recorded), and as a config file's settings are checked.
    const { config, target } = recordedRunConfig({ id: 1, config: { ...STORED_BEFORE_REGISTRY, voteTies: 'no-label' } });
    expect(parseStoredConfig(STORED_BEFORE_REGISTRY, 'run.json')).toEqual({ config, target, name: undefined });
    const { model, dataset, device, difficulty, ...loop } = STORED_BEFORE_REGISTRY;
    // Settings added since (long prompts, the prompt format, the tie rule, the signal check, the actor–critic's, precision) take their
    // defaults, as do the settings of the methods added since.
    const added = {
      longPrompts: 'fail', maxPromptTokens: 0, microBatch: 0, promptFormat: 'raw', voteTies: 'no-label', signalMinExtraction: 0.5, signalMinLift: 1.05, signalMinGroupsWithSignal: 0.1, signalWindow: 3, signalAction: 'warn',
      gaeGamma: 1, gaeLambda: 1, valueClip: 0.5, criticLr: 0.001, criticEpochs: 1, criticWarmup: 0, precision: 'fp32',
    };
    const methodDefaults = Object.fromEntries(BUILTIN_METHODS.flatMap((m) => Object.entries(m.settings.parse({}))));
    expect(config).toEqual({ ...methodDefaults, ...loop, ...added });
    expect(target).toEqual({ model, dataset, device, difficulty });
    const srt = parseStoredConfig({ ...STORED_BEFORE_REGISTRY, method: 'srt', srtThreshold: 0.6, softReward: true }, 'run 2').config;
    expect(srt).toMatchObject({ method: 'srt', srtThreshold: 0.6, softReward: true });
  });

  it('an unknown method is refused with the list of methods', () => {
    expect(() => parseRunConfig({ method: 'nope' })).toThrow(`unknown method "nope"; the methods are ${BUILTIN}`);
    expect(() => parseStoredConfig({ ...STORED_BEFORE_REGISTRY, method: 'nope' }, 'run.json')).toThrow(/run\.json: unknown method "nope"/);
  });
});

describe('a method added with one registration', () => {
  let h: Harness;
  let unregister: () => void;
  beforeAll(() => {
    unregister = registerMethod(constant);
    h = createHarness();
  });
  afterAll(() => {
    unregister();
    h.close();
  });

  it('validates in the run configuration, with its own settings and its recipe’s defaults', () => {
    const c = parseRunConfig({ method: 'test-constant', constantReward: 0.25 });
    expect(c).toMatchObject({ method: 'test-constant', constantReward: 0.25, klCoef: 0.005 });
    // A setting given explicitly wins over the method's recipe.
    expect(parseRunConfig({ method: 'test-constant', klCoef: 0.01 }).klCoef).toBe(0.01);
    // Other methods keep the common default.
    expect(parseRunConfig({ method: 'ttrl' }).klCoef).toBe(0.001);
    expect(() => parseRunConfig({ method: 'test-constant', constantReward: 2 })).toThrow(/constantReward/);
  });

  it('drives the loop’s scorer', () => {
    const scorer = scorerFor(parseRunConfig({ method: 'test-constant', constantReward: 0.75 }));
    const sample = { text: 'x', answer: null, tokenCount: 1, tokenIds: [7], logprobs: [-0.5], entropies: [1], selfCertainties: [0.2] };
    expect((scorer({ prompt: 'p', samples: [sample, sample] }, {}) as { rewards: number[] }).rewards).toEqual([0.75, 0.75]);
  });

  it('is in the contract: runs.methods lists it with its metrics, runs.settings with its setting', async () => {
    const catalog = await h.call('runs.methods', {});
    expect(catalog.methods.map((m) => m.id)).toEqual([...BUILTIN_METHODS.map((m) => m.id), 'test-constant']);
    expect(catalog.methods.at(-1)).toEqual({
      id: 'test-constant',
      label: 'Constant (test)',
      description: 'Every sample earns the same reward.',
      pipeline: 'group-reward',
      settings: ['constantReward'],
      defaults: { klCoef: 0.005 },
    });
    expect(catalog.metrics.find((m) => m.key === 'test/constant')).toMatchObject({ method: 'test-constant', chart: 'reward', unit: true, groundTruth: false });
    // The metrics every run logs come first, from the one table, each charted on a known chart.
    expect(catalog.metrics.slice(0, RUN_METRICS.length).map((m) => m.key)).toEqual(RUN_METRICS.map((m) => m.key));
    const charts = new Set(catalog.charts.map((c) => c.id));
    for (const m of catalog.metrics) if (m.chart !== null) expect(charts.has(m.chart), m.key).toBe(true);

    const settings = await h.call('runs.settings', {});
    expect(settings.find((s) => s.name === 'method')?.options).toEqual([...BUILTIN_METHODS.map((m) => m.id), 'test-constant']);
    expect(settings.find((s) => s.name === 'constantReward')).toMatchObject({ kind: 'number', min: 0, max: 1, default: 0.5, method: 'test-constant' });
    expect(settings.find((s) => s.name === 'srtThreshold')?.method).toBe('srt');
    expect(settings.find((s) => s.name === 'votes')?.method).toBeUndefined();
  });

  it('runs.create accepts it and its settings, and refuses a bad value at its field', async () => {
    const run = await h.call('runs.create', { model: 'tiny-chars', dataset: 'arithmetic', difficulty: 1, config: { method: 'test-constant', constantReward: 0.3 }, start: false });
    expect(run).toMatchObject({ method: 'test-constant', name: expect.stringMatching(/^test-constant-tiny-chars-/) });
    expect(run.config).toMatchObject({ method: 'test-constant', constantReward: 0.3, klCoef: 0.005 });
    const bad = await h.refused('runs.create', { model: 'tiny-chars', dataset: 'arithmetic', config: { method: 'test-constant', constantReward: 'lots' } });
    expect(bad.code).toBe('BAD_REQUEST');
    expect(bad.issues?.map((i) => i.path)).toEqual(['config.constantReward']);
    const unknown = await h.refused('runs.create', { model: 'tiny-chars', dataset: 'arithmetic', config: { method: 'test-nothing' } });
    expect(unknown.issues).toEqual([{ path: 'config.method', message: `unknown method "test-nothing"; the methods are ${BUILTIN}, test-constant` }]);
  });

  it('is in the command line’s help and --method choices', () => {
    const help = helpText(runCommand as never);
    expect(help).toContain(`--method ${BUILTIN_METHODS.map((m) => m.id).join('|')}|test-constant`);
    expect(help).toMatch(/test-constant: Constant \(test\)\. Every sample earns the same reward\. Defaults: klCoef=0\.005\./);
    expect(help).toMatch(/constantReward \(0\.5\): The reward every sample earns/);
  });

  it('a second method may not reuse an id, a setting name or a metric key', () => {
    expect(() => registerMethod({ ...constant })).toThrow(/already registered/);
    expect(() => registerMethod({ ...constant, id: 'test-other' })).toThrow(/setting "constantReward" is already a setting of method "test-constant"/);
    expect(() => registerMethod({ ...constant, id: 'test-other', settings: z.object({ votes: z.number().default(1) }) })).toThrow(/"votes" is a common run setting/);
    expect(() => registerMethod({ ...constant, id: 'test-other', settings: z.object({}) })).toThrow(/metric "test\/constant" is already logged/);
    expect(() => registerMethod({ ...constant, id: 'Bad Id' })).toThrow(/lower-case/);
  });
});

describe('after the method is removed', () => {
  it('its runs no longer validate, with the reason', () => {
    expect(() => parseRunConfig({ method: 'test-constant' })).toThrow(/unknown method "test-constant"/);
  });
});
