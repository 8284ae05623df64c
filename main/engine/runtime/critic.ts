// The critic of the actor–critic: a value head (a linear layer hidden → 1) on the policy's final
// hidden states, with its own parameters and its own AdamW, trained with PPO's clipped value loss
// on the GAE returns (nn/losses.ts valueLoss, rl/gae.ts).
//
// The head reads the hidden states the policy computed for the rollout (Trainer.hiddenStates)
// and never differentiates into them: the policy is trained by its own loss only, the value loss
// moves the head only, and so the critic has its own learning rate (verl's critic is a separate
// model with its own optimizer too). Because those hidden states do not change while the head
// learns, one forward pass of the policy serves the values GAE needs and every critic update of
// the step. The parameters are tiny (H + 1 values) and live on the host; each graph is fed them.
import * as ort from 'onnxruntime-node';
import { grad } from '../graph/autodiff.ts';
import { Graph, type Sym } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import { valueHead, valueLoss } from '../nn/losses.ts';
import { type AdamWHyper, adamw, checkAdamW, clipCoefficient, sumOfSquares } from '../optim/adamw.ts';
import type { Device } from './devices.ts';
import type { FlatArray, StoreDType } from './parameter-store.ts';
import { CompiledGraph } from './session.ts';

export interface CriticOptions {
  /** The policy's hidden size H (the head is [1, H] plus a bias). */
  hiddenSize: number;
  device: Device;
  dtype: StoreDType;
  /** The rows and positions of the hidden states each call gets (the trainer's batch shape). */
  batch: { size: number; seqLen: number };
  /** Value clip range c: a prediction moves at most c from the old value before clipping (verl's cliprange_value). */
  cliprange: number;
  optimizer: AdamWHyper;
}

/** What a checkpoint keeps of a critic: the head, its AdamW moments and its update count. */
export interface CriticState {
  /** [1, H] */
  weight: Float32Array;
  /** [1] */
  bias: Float32Array;
  /** Moments over the flat [weight…, bias] values (H + 1). */
  m: Float32Array;
  v: Float32Array;
  step: number;
}

export interface CriticStepInputs {
  /** The rollout's hidden states [size · seqLen · H] (Trainer.hiddenStates). */
  hidden: FlatArray;
  /** Regression targets per position [size · seqLen] (GAE returns). */
  returns: ArrayLike<number>;
  /** The values the returns were computed with (this critic before the step's updates). */
  oldValues: ArrayLike<number>;
  /** 1 for the positions that count (response tokens). */
  mask: ArrayLike<number>;
}

export interface CriticStepResult {
  /** verl's critic/vf_loss, vf_clipfrac, vpred_mean and grad_norm of this update. */
  vfLoss: number;
  vfClipfrac: number;
  vpredMean: number;
  gradNorm: number;
  /** A non-finite gradient: the head and moments were kept as they were. */
  skipped: boolean;
}

const IO = { hidden: 'hidden_states', params: 'params', m: 'exp_avg', v: 'exp_avg_sq', lr: 'lr', step: 'step', returns: 'returns', values: 'values', mask: 'mask' } as const;

/** The head's [weight…, bias] as one flat input, cut into its two tensors. */
function head(params: Sym, H: number) {
  return { weight: op.reshape(op.slice(params, 0, 0, H), [1, H]), bias: op.slice(params, 0, H, H + 1) };
}

export function buildValueGraph(H: number, batch: { size: number; seqLen: number }, dtype: StoreDType): Graph {
  const g = new Graph('critic_values');
  g.recording = false;
  const hidden = g.input(IO.hidden, [batch.size, batch.seqLen, H], dtype);
  const { weight, bias } = head(g.input(IO.params, [H + 1], dtype), H);
  g.output('values', valueHead(hidden, weight, bias));
  return g;
}

/** One critic update: value loss, its gradient on the head alone, global-norm clipping and AdamW. */
export function buildCriticStepGraph(H: number, batch: { size: number; seqLen: number }, dtype: StoreDType, cliprange: number, optimizer: AdamWHyper): Graph {
  const { size: B, seqLen: T } = batch;
  const g = new Graph('critic_step');
  const hidden = g.input(IO.hidden, [B, T, H], dtype);
  const params = g.input(IO.params, [H + 1], dtype);
  const m = g.input(IO.m, [H + 1], dtype);
  const v = g.input(IO.v, [H + 1], dtype);
  const lr = g.input(IO.lr, [], dtype);
  const step = g.input(IO.step, [], dtype);
  const returns = g.input(IO.returns, [B, T], dtype);
  const values = g.input(IO.values, [B, T], dtype);
  const mask = g.input(IO.mask, [B, T], dtype);
  const { weight, bias } = head(params, H);
  const r = valueLoss({ vpreds: valueHead(hidden, weight, bias), returns, values, mask }, cliprange);
  const [gp] = grad(r.loss, [params]);
  const norm = clipCoefficient(sumOfSquares([gp]), optimizer.maxGradNorm);
  const next = adamw({ params: [params], grads: [gp], gradScale: norm.coef, m: [m], v: [v], lr, step }, optimizer);
  g.output('params_out', next.params[0]);
  g.output('exp_avg_out', next.m[0]);
  g.output('exp_avg_sq_out', next.v[0]);
  g.output('vf_loss', r.loss);
  g.output('vf_clipfrac', r.clipfrac);
  g.output('vpred_mean', r.vpredMean);
  g.output('grad_norm', norm.norm);
  return g;
}

export class Critic {
  private stepsDone = 0;

  private constructor(
    readonly options: CriticOptions,
    private params: FlatArray,
    private m: FlatArray,
    private v: FlatArray,
    private readonly valueGraph: CompiledGraph,
    private readonly stepGraph: CompiledGraph,
  ) {}

  /** A new critic whose head starts at zero (every value 0: a linear regression on fixed features needs no symmetry breaking). */
  static async create(options: CriticOptions): Promise<Critic> {
    const { hiddenSize: H, batch, dtype, device, cliprange, optimizer } = options;
    if (!Number.isInteger(H) || H <= 0) throw new Error(`the critic needs a positive hidden size, got ${H}`);
    checkAdamW(optimizer);
    const zeros = () => (dtype === 'float64' ? new Float64Array(H + 1) : new Float32Array(H + 1));
    const valueGraph = await CompiledGraph.create(buildValueGraph(H, batch, dtype), device);
    try {
      const stepGraph = await CompiledGraph.create(buildCriticStepGraph(H, batch, dtype, cliprange, optimizer), device);
      return new Critic(options, zeros(), zeros(), zeros(), valueGraph, stepGraph);
    } catch (e) {
      await valueGraph.release();
      throw e;
    }
  }

  /** Critic updates applied so far. */
  get stepCount(): number {
    return this.stepsDone;
  }

  private tensor(values: ArrayLike<number>, dims: number[]): ort.Tensor {
    const data = this.options.dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
    return new ort.Tensor(this.options.dtype, data, dims);
  }

  private hiddenTensor(hidden: FlatArray): ort.Tensor {
    const { size, seqLen } = this.options.batch;
    const H = this.options.hiddenSize;
    if (hidden.length !== size * seqLen * H) throw new Error(`the critic got ${hidden.length} hidden values; a ${size}×${seqLen} batch of size ${H} needs ${size * seqLen * H}`);
    return this.tensor(hidden, [size, seqLen, H]);
  }

  /** The value of every position [size · seqLen] under the current head. */
  async values(hidden: FlatArray): Promise<FlatArray> {
    const out = await this.valueGraph.run({ [IO.hidden]: this.hiddenTensor(hidden), [IO.params]: this.tensor(this.params, [this.params.length]) });
    return out.values.data as FlatArray;
  }

  /** One update of the head at learning rate `lr`. */
  async step(inputs: CriticStepInputs, lr: number): Promise<CriticStepResult> {
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`the critic's learning rate must be a finite number >= 0, got ${lr}`);
    const { size, seqLen } = this.options.batch;
    const n = size * seqLen;
    for (const name of ['returns', 'oldValues', 'mask'] as const) {
      if (inputs[name].length !== n) throw new Error(`critic step: ${name} has ${inputs[name].length} values; the batch needs ${n}`);
    }
    const H1 = this.options.hiddenSize + 1;
    const out = await this.stepGraph.run({
      [IO.hidden]: this.hiddenTensor(inputs.hidden),
      [IO.params]: this.tensor(this.params, [H1]),
      [IO.m]: this.tensor(this.m, [H1]),
      [IO.v]: this.tensor(this.v, [H1]),
      [IO.lr]: this.tensor([lr], []),
      [IO.step]: this.tensor([this.stepsDone + 1], []),
      [IO.returns]: this.tensor(inputs.returns, [size, seqLen]),
      [IO.values]: this.tensor(inputs.oldValues, [size, seqLen]),
      [IO.mask]: this.tensor(inputs.mask, [size, seqLen]),
    });
    const value = (name: string) => Number(out[name].data[0]);
    const gradNorm = value('grad_norm');
    const skipped = !Number.isFinite(gradNorm);
    if (!skipped) {
      this.params = out.params_out.data as FlatArray;
      this.m = out.exp_avg_out.data as FlatArray;
      this.v = out.exp_avg_sq_out.data as FlatArray;
      this.stepsDone++;
    }
    return { vfLoss: value('vf_loss'), vfClipfrac: value('vf_clipfrac'), vpredMean: value('vpred_mean'), gradNorm, skipped };
  }

  /** A copy of the head, its moments and its update count (what a checkpoint saves). */
  state(): CriticState {
    const H = this.options.hiddenSize;
    return {
      weight: Float32Array.from(this.params.subarray(0, H)),
      bias: Float32Array.from(this.params.subarray(H)),
      m: Float32Array.from(this.m),
      v: Float32Array.from(this.v),
      step: this.stepsDone,
    };
  }

  /** Continue from a saved state (a checkpoint's critic), which must fit this critic's hidden size. */
  restore(state: CriticState, where = 'the checkpoint'): void {
    const H = this.options.hiddenSize;
    if (state.weight.length !== H || state.bias.length !== 1 || state.m.length !== H + 1 || state.v.length !== H + 1) {
      throw new Error(`${where}: its critic has a value head of ${state.weight.length} inputs (moments ${state.m.length}), this model's hidden size is ${H}`);
    }
    const widen = (a: Float32Array): FlatArray => (this.options.dtype === 'float64' ? Float64Array.from(a) : Float32Array.from(a));
    const params = widen(new Float32Array([...state.weight, ...state.bias]));
    this.params = params;
    this.m = widen(state.m);
    this.v = widen(state.v);
    this.stepsDone = state.step;
  }

  async release(): Promise<void> {
    await this.valueGraph.release();
    await this.stepGraph.release();
  }
}
