// The one list of label-free methods. A built-in method is a module in this folder and one entry
// in BUILTIN_METHODS; a plug-in (or a test) adds one with `registerMethod`.
import { CommonRunConfigSchema, DEFAULT_METHOD } from '../common-settings.ts';
import { CHARTS } from '../metrics.ts';
import { agent } from './agent.ts';
import { codeConsensus } from './code-consensus.ts';
import { coRewarding } from './co-rewarding.ts';
import { consistencyJudge } from './consistency-judge.ts';
import { selfCertainty } from './self-certainty.ts';
import { semanticClusters } from './semantic-clusters.ts';
import { srt } from './srt.ts';
import { svd } from './svd.ts';
import { tokenEntropy } from './token-entropy.ts';
import { trajectoryLikelihood } from './trajectory-likelihood.ts';
import { ttrl } from './ttrl.ts';
import type { MethodDefinition } from './types.ts';

/** The built-in methods, in the order the New run form and the help list them. */
export const BUILTIN_METHODS = [ttrl, srt, selfCertainty, tokenEntropy, semanticClusters, trajectoryLikelihood, consistencyJudge, coRewarding, codeConsensus, svd, agent] as const;

export { DEFAULT_METHOD };

const methods: MethodDefinition[] = [...BUILTIN_METHODS];
let version = 0;

const ID = /^[a-z][a-z0-9-]*$/;

/** Every method, built-in first, then those registered, in registration order. */
export function listMethods(): readonly MethodDefinition[] {
  return methods;
}

export function findMethod(id: string): MethodDefinition | undefined {
  return methods.find((m) => m.id === id);
}

/** The method `id`, or an error that lists the ones there are. */
export function getMethod(id: string): MethodDefinition {
  const m = findMethod(id);
  if (!m) throw new Error(unknownMethodMessage(id));
  return m;
}

export function unknownMethodMessage(id: string): string {
  return `unknown method "${id}"; the methods are ${methods.map((m) => m.id).join(', ')}`;
}

/** Changes whenever a method is added or removed (schemas built from the registry are cached on it). */
export function registryVersion(): number {
  return version;
}

/**
 * Adds a method (a plug-in, or a test's). Its id and setting names must be new: settings are
 * flat keys of the run configuration. Returns the function that removes it again.
 */
export function registerMethod(def: MethodDefinition): () => void {
  if (!ID.test(def.id)) throw new Error(`method id "${def.id}" must be lower-case letters, digits and dashes, starting with a letter`);
  if (findMethod(def.id)) throw new Error(`a method "${def.id}" is already registered`);
  for (const name of Object.keys(def.settings.shape)) {
    if (name in CommonRunConfigSchema.shape) throw new Error(`method "${def.id}": setting "${name}" is a common run setting; give it another name`);
    const owner = methods.find((m) => name in m.settings.shape);
    if (owner) throw new Error(`method "${def.id}": setting "${name}" is already a setting of method "${owner.id}"`);
  }
  const metricOwner = (key: string) => methods.find((m) => m.metrics.some((x) => x.key === key));
  for (const metric of def.metrics) {
    const owner = metricOwner(metric.key);
    if (owner) throw new Error(`method "${def.id}": metric "${metric.key}" is already logged by method "${owner.id}"`);
  }
  for (const chart of def.charts ?? []) {
    if (CHARTS.some((c) => c.id === chart.id) || methods.some((m) => m.charts?.some((c) => c.id === chart.id))) throw new Error(`method "${def.id}": chart "${chart.id}" already exists`);
  }
  methods.push(def);
  version++;
  return () => {
    const i = methods.indexOf(def);
    if (i >= 0) {
      methods.splice(i, 1);
      version++;
    }
  };
}
