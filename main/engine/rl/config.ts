// The run configuration: every hyperparameter of a label-free run, with its default and a
// one-line description, so the command line and the app can validate and display it from here.
// The common settings are in common-settings.ts; each method adds its own (methods/), as flat
// keys, and may change common defaults to its reference recipe. The full schema is built from
// the registry.
import { z } from 'zod';
import { CommonRunConfigSchema, type CommonRunConfig, DEFAULT_METHOD } from './common-settings.ts';
import { fieldIssues, issuesText, PHRASED } from '../../issues.ts';
import { type KlControl, klControlProblems } from './kl-controller.ts';
import { BUILTIN_METHODS, findMethod, listMethods, registryVersion, unknownMethodMessage } from './methods/registry.ts';
import type { MethodDefinition, SettingProblem } from './methods/types.ts';
import type { SignalThresholds } from './signal.ts';

export { CommonRunConfigSchema, DEFAULT_METHOD, type CommonRunConfig } from './common-settings.ts';

// The built-in methods' own settings, typed (a plug-in's are checked at run time only).
type Intersect<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type BuiltinShape = Intersect<(typeof BUILTIN_METHODS)[number]['settings']['shape']>;
// From the shapes, not z.output of the objects: an empty object's output is Record<string, never>.
type BuiltinSettings = { [K in keyof BuiltinShape]: z.output<BuiltinShape[K]> };
type BuiltinSettingsInput = { [K in keyof BuiltinShape]?: z.input<BuiltinShape[K]> };

/** A validated run configuration: the common settings and every method's own (defaults filled in). */
export type RunConfig = CommonRunConfig & BuiltinSettings;
export type RunConfigInput = z.input<typeof CommonRunConfigSchema> & BuiltinSettingsInput;

let built: { version: number; schema: z.ZodObject } | null = null;

/**
 * The whole configuration's schema: the common settings and the settings of every registered
 * method (flat keys). Rebuilt when the registry changes.
 */
export function runConfigSchema(): z.ZodObject {
  if (built?.version === registryVersion()) return built.schema;
  const shape: Record<string, z.ZodType> = {
    ...CommonRunConfigSchema.shape,
    // Checked against the registry at parse time, so the message lists the methods there are.
    method: CommonRunConfigSchema.shape.method.superRefine((id, ctx) => {
      if (!findMethod(id)) ctx.addIssue({ code: 'custom', message: unknownMethodMessage(id) });
    }),
  };
  // registerMethod has checked that no two methods, and no method and the common settings, share a name.
  for (const m of listMethods()) Object.assign(shape, m.settings.shape);
  built = { version: registryVersion(), schema: z.object(shape) };
  return built.schema;
}

/** Every setting at its default (TTRL's). */
export const RUN_CONFIG_DEFAULTS: RunConfig = parseRunConfig({});

/**
 * A partial configuration checked, with defaults filled in (the method's own recipe first, where
 * it changes a common default), or every problem with it, each at its setting: each setting
 * against its schema (worded for a person), then the checks across settings (trainSamples
 * against votes, the adaptive KL controller's start, the chosen method's own `check`). The
 * command line, `runs.create` and the New run form (`runs.checkConfig`) all ask this. With
 * `strict`, a key that is no setting is a problem too. Settings of methods other than the chosen
 * one are kept as given (stored configurations carry every method's settings).
 */
export function checkRunConfig(input: unknown, options: { strict?: boolean } = {}): { config: RunConfig; problems?: undefined } | { problems: SettingProblem[] } {
  const raw = input ?? {};
  const named = typeof raw === 'object' ? (raw as { method?: unknown }).method : undefined;
  const method = findMethod(typeof named === 'string' ? named : DEFAULT_METHOD);
  const withDefaults = method?.defaults && typeof raw === 'object' ? { ...method.defaults, ...raw } : raw;
  const schema = options.strict ? runConfigSchema().strict() : runConfigSchema();
  const parsed = schema.safeParse(withDefaults, PHRASED);
  if (!parsed.success) {
    return {
      problems: fieldIssues(parsed.error.issues).map((i) => ({
        setting: i.path || 'config',
        message: i.message.replace(/ is not a known field$/, ' is not a run setting'),
      })),
    };
  }
  const config = parsed.data as RunConfig;
  const problems: SettingProblem[] = [];
  const chosen = methodOf(config);
  // An agent method trains every episode of a group; it has no down-sampling to check.
  if (chosen.pipeline !== 'agent-episodes' && config.trainSamples > config.votes) problems.push({ setting: 'trainSamples', message: `trainSamples (${config.trainSamples}) cannot exceed votes (${config.votes})` });
  if (config.klTarget > 0) problems.push(...klControlProblems(klControlOf(config)));
  if (config.advantage === 'gae') {
    // The critic learns the returns of sampled responses: the RL loop of methods that score them.
    if (chosen.pipeline !== 'group-reward') problems.push({ setting: 'advantage', message: `advantage gae (the learned critic) needs a method that scores samples; ${chosen.id} (pipeline ${chosen.pipeline}) has none: choose grpo, drgrpo or rloo` });
    else if (config.criticWarmup >= config.steps) {
      problems.push({ setting: 'criticWarmup', message: `criticWarmup (${config.criticWarmup}) leaves the policy no step to learn in: it must be below steps (${config.steps})` });
    }
  }
  problems.push(...(chosen.check?.(chosen.settings.parse(config)) ?? []));
  return problems.length ? { problems } : { config };
}

/** A checked configuration with its defaults (checkRunConfig); throws RunConfigError with every problem. */
export function parseRunConfig(input: unknown): RunConfig {
  const checked = checkRunConfig(input);
  if (checked.problems) throw new RunConfigError(checked.problems);
  return checked.config;
}

/** A configuration that does not validate: every problem, each at its setting. */
export class RunConfigError extends Error {
  override name = 'RunConfigError';
  constructor(readonly problems: readonly SettingProblem[]) {
    super(issuesText(problems));
  }
}

/** The method a validated configuration names. */
export function methodOf(config: RunConfig): MethodDefinition {
  const m = findMethod(config.method);
  if (!m) throw new Error(unknownMethodMessage(config.method));
  return m;
}

export interface SettingDescription {
  name: string;
  default: unknown;
  description: string;
  /** The method whose own setting it is; absent for the common settings. */
  method?: string;
}

function describeSchema(schema: z.ZodObject, method?: string): SettingDescription[] {
  const defaults = schema.parse({}) as Record<string, unknown>;
  return Object.entries(schema.shape).map(([name, field]) => ({
    name,
    default: defaults[name],
    description: (field as z.ZodType).description ?? '',
    ...(method !== undefined && { method }),
  }));
}

/** Name, default and description of every setting: the common ones in schema order, then each method's (for help text and forms). */
export function describeRunConfig(): SettingDescription[] {
  return [...describeSchema(CommonRunConfigSchema), ...listMethods().flatMap((m) => describeSchema(m.settings, m.id))];
}

/** The adaptive KL controller's settings (used when klTarget > 0). */
export function klControlOf(config: RunConfig): KlControl {
  return { initial: config.klCoef, target: config.klTarget, horizon: config.klHorizon };
}

/** The signal check's thresholds and window (signal.ts). */
export function signalThresholdsOf(config: RunConfig): SignalThresholds & { window: number } {
  return { minExtraction: config.signalMinExtraction, minLift: config.signalMinLift, minGroupsWithSignal: config.signalMinGroupsWithSignal, window: config.signalWindow };
}
