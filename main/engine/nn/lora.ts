// LoRA as PEFT defines it: each targeted linear layer W gains a low-rank term
//   y = W·x + (B·(A·x))·(alpha / rank),   A: [rank, in], B: [out, rank],
// with A drawn like nn.Linear's default init (kaiming-uniform, a = √5: U(±1/√in)) and B = 0, so
// a fresh adapter leaves the model unchanged. Weights carry PEFT's state-dict names, so a saved
// adapter loads in `peft` as it is.
import type { Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import type { SeededRng } from '../runtime/rng.ts';
import { LINEAR_MODULES, type LinearModule, type LlamaConfig, weightShapes } from './config.ts';

export interface LoraSpec {
  rank: number;
  alpha: number;
  /** Linear layers that get an adapter, by PEFT's module names. */
  targetModules: readonly LinearModule[];
}

export function checkLoraSpec(spec: LoraSpec): void {
  if (!Number.isInteger(spec.rank) || spec.rank <= 0) throw new Error(`LoRA rank must be a positive integer, got ${spec.rank}`);
  if (!(spec.alpha > 0)) throw new Error(`LoRA alpha must be > 0, got ${spec.alpha}`);
  if (spec.targetModules.length === 0) throw new Error(`LoRA needs at least one target module (any of ${LINEAR_MODULES.join(', ')})`);
  for (const m of spec.targetModules) {
    if (!(LINEAR_MODULES as readonly string[]).includes(m)) {
      throw new Error(`LoRA target module "${m}" is not a linear layer of this model family (choose from ${LINEAR_MODULES.join(', ')})`);
    }
  }
}

/** PEFT's scaling of the low-rank term (no rsLoRA). */
export function loraScale(spec: LoraSpec): number {
  return spec.alpha / spec.rank;
}

/** The PEFT state-dict key of a layer's A or B matrix, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight. */
export function loraWeightName(prefix: string, which: 'A' | 'B'): string {
  return `base_model.model.${prefix}.lora_${which}.weight`;
}

export interface LoraTarget {
  /** The linear layer's path, e.g. model.layers.0.self_attn.q_proj. */
  prefix: string;
  module: LinearModule;
  inFeatures: number;
  outFeatures: number;
}

/** Every linear layer the spec adapts, in the model's weight order. */
export function loraTargets(config: LlamaConfig, spec: LoraSpec): LoraTarget[] {
  checkLoraSpec(spec);
  const targets: LoraTarget[] = [];
  for (const [name, shape] of weightShapes(config)) {
    const m = /^(model\.layers\.\d+\.(?:self_attn|mlp)\.(\w+))\.weight$/.exec(name);
    if (!m || !spec.targetModules.includes(m[2] as LinearModule)) continue;
    targets.push({ prefix: m[1], module: m[2] as LinearModule, outFeatures: shape[0], inFeatures: shape[1] });
  }
  return targets;
}

/** Names and shapes of every adapter weight: A then B for each target. */
export function loraShapes(config: LlamaConfig, spec: LoraSpec): [string, number[]][] {
  return loraTargets(config, spec).flatMap((t): [string, number[]][] => [
    [loraWeightName(t.prefix, 'A'), [spec.rank, t.inFeatures]],
    [loraWeightName(t.prefix, 'B'), [t.outFeatures, spec.rank]],
  ]);
}

/** Fresh adapter weights: A ~ U(±1/√in) from `rng`, B = 0. */
export function initLoraWeights(config: LlamaConfig, spec: LoraSpec, rng: SeededRng): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of loraTargets(config, spec)) {
    const bound = 1 / Math.sqrt(t.inFeatures);
    const a = new Float32Array(spec.rank * t.inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = rng.uniform(-bound, bound);
    out.set(loraWeightName(t.prefix, 'A'), { shape: [spec.rank, t.inFeatures], data: a });
    out.set(loraWeightName(t.prefix, 'B'), { shape: [t.outFeatures, spec.rank], data: new Float32Array(t.outFeatures * spec.rank) });
  }
  return out;
}

/** The low-rank term for input x [..., in]: ((x·Aᵀ)·scale)·Bᵀ, scaled at rank width where it is cheapest. */
export function loraDelta(x: Sym, a: Sym, b: Sym, scale: number): Sym {
  return op.linear(op.mul(op.linear(x, a), scale), b);
}

/** The adapter_config.json PEFT writes for this spec. */
export function peftAdapterConfig(spec: LoraSpec, baseModelNameOrPath: string | null): Record<string, unknown> {
  checkLoraSpec(spec);
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelNameOrPath,
    r: spec.rank,
    lora_alpha: spec.alpha,
    lora_dropout: 0,
    target_modules: [...spec.targetModules],
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
}

/** Read a LoRA spec back from an adapter_config.json, rejecting what this engine cannot apply. */
export function loraSpecFromPeftConfig(json: unknown, source = 'adapter_config.json'): LoraSpec {
  const c = json as Record<string, unknown>;
  if (!c || typeof c !== 'object') throw new Error(`${source}: not a JSON object`);
  if (c.peft_type !== 'LORA') throw new Error(`${source}: peft_type is ${JSON.stringify(c.peft_type)}, only LORA is supported`);
  const rank = c.r;
  const alpha = c.lora_alpha;
  if (typeof rank !== 'number' || typeof alpha !== 'number') throw new Error(`${source}: r and lora_alpha must be numbers`);
  if (c.use_rslora === true || c.use_dora === true) throw new Error(`${source}: rsLoRA and DoRA adapters are not supported`);
  if (c.bias !== undefined && c.bias !== 'none') throw new Error(`${source}: bias "${String(c.bias)}" is not supported (only "none")`);
  const pattern = (v: unknown) => v && typeof v === 'object' && Object.keys(v).length > 0;
  if (pattern(c.rank_pattern) || pattern(c.alpha_pattern)) throw new Error(`${source}: per-layer rank_pattern / alpha_pattern are not supported`);
  const spec: LoraSpec = { rank, alpha, targetModules: peftTargetModules(c.target_modules, source) };
  checkLoraSpec(spec);
  return spec;
}

/**
 * PEFT's target_modules as module names. PEFT matches a listed name against the end of each
 * module path, and with "all-linear" it saves full paths ("model.layers.1.mlp.up_proj"), so
 * a path counts as its last part, provided every module is targeted in the same layers 0..n-1
 * (per-layer targeting cannot be expressed here). A single string is a regular expression to
 * PEFT: only "all-linear" and plain module names are understood.
 */
function peftTargetModules(modules: unknown, source: string): LinearModule[] {
  if (typeof modules === 'string') {
    if (modules === 'all-linear') return [...LINEAR_MODULES];
    if ((LINEAR_MODULES as readonly string[]).includes(modules)) return [modules as LinearModule];
    throw new Error(`${source}: target_modules "${modules}" is a regular expression, which is not supported; list the module names`);
  }
  if (!Array.isArray(modules) || modules.some((m) => typeof m !== 'string')) {
    throw new Error(`${source}: target_modules must be a list of module names`);
  }
  const layersOf = new Map<string, Set<number>>();
  for (const entry of modules as string[]) {
    const parts = entry.split('.');
    const name = parts[parts.length - 1];
    if (!layersOf.has(name)) layersOf.set(name, new Set());
    const layer = /(?:^|\.)layers\.(\d+)\./.exec(entry);
    if (parts.length > 1 && layer) layersOf.get(name)!.add(Number(layer[1]));
  }
  const coverage = [...layersOf.values()].filter((s) => s.size > 0);
  const signature = (s: Set<number>) => [...s].sort((a, b) => a - b).join(',');
  if (coverage.length > 0) {
    const first = signature(coverage[0]);
    const contiguous = [...coverage[0]].sort((a, b) => a - b).every((l, i) => l === i);
    if (!contiguous || coverage.some((s) => signature(s) !== first) || coverage.length !== layersOf.size) {
      throw new Error(`${source}: target_modules names individual layers; only the same modules in every layer are supported`);
    }
  }
  return [...layersOf.keys()] as LinearModule[];
}
