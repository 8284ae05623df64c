// The settings every label-free run has, whatever its method, with defaults and one-line
// descriptions. A method's own settings are in its module (methods/); config.ts joins them.
// Kept apart from config.ts so the method registry can check names against it without a cycle.
//
// Defaults follow TTRL (METHODS.md) where they are size-independent (rollout temperature 1.0,
// KL 0.001, clip 0.2, cosine with 3% warmup, validation at T 0.6 / top-p 0.95); sizes and the
// learning rate are scaled to the small built-in models on a CPU (TTRL: 64 votes, 32 trained,
// lr 5e-7 for 7B models).
import { z } from 'zod';
import { LINEAR_MODULES } from '../nn/config.ts';
import { PRECISIONS } from '../runtime/precision.ts';
import { LONG_PROMPT_POLICIES, PROMPT_FORMATS } from './prompts.ts';

/** The method of a configuration that names none. */
export const DEFAULT_METHOD = 'ttrl';

/** The advantage estimators: the group-relative ones (advantages.ts) and GAE with a learned critic (gae.ts). */
export const ADVANTAGE_CHOICES = ['grpo', 'drgrpo', 'rloo', 'gae'] as const;

const int = (min: number) => z.number().int().min(min);
const unit = () => z.number().min(0).max(1);

/** The settings every method shares. */
export const CommonRunConfigSchema = z.object({
  method: z
    .string()
    .default(DEFAULT_METHOD)
    .describe('Label-free method: how samples become rewards (the methods and their own settings are listed with them)'),
  seed: int(0).default(0).describe('Seed of the prompt order, the down-sampling and the sampling'),
  steps: int(1).default(40).describe('Training steps (updates) in the run'),

  promptsPerStep: int(1).default(4).describe('B: prompts per step'),
  votes: int(1).default(16).describe('N_votes: samples per prompt that vote on the pseudo-label (TTRL: 64)'),
  trainSamples: int(1).default(8).describe('N_train: votes per prompt chosen at random for the update (TTRL: 32)'),
  maxNewTokens: int(1).default(16).describe('Longest response, in tokens'),
  longPrompts: z
    .enum(LONG_PROMPT_POLICIES)
    .default('fail')
    .describe("A prompt that with maxNewTokens does not fit the model's context (or is over maxPromptTokens): fail naming it, skip it, or truncate it (keeping its start and end)"),
  maxPromptTokens: int(0)
    .default(0)
    .describe("Longest prompt, in tokens (0 = what the model's context leaves after maxNewTokens); the update's memory grows with the square of the longest prompt"),
  microBatch: int(0)
    .default(0)
    .describe("Sequences per forward/backward pass of an update (verl's ppo_micro_batch_size_per_gpu): their gradients are summed into one update, so memory holds one micro-batch's activations. 0 = the whole update at once when it fits the memory the run may use (on the CPU), else the largest micro-batch that fits"),
  precision: z
    .enum(PRECISIONS)
    .default('fp32')
    .describe('Numeric precision of training and sampling: fp32, or mixed (weights read as float16, float16 activations, matrix products and KV cache; float32 master weights, optimizer moments, norm statistics, softmaxes, log-probs and losses; dynamic loss scaling, which skips an update whose gradient overflows). A GPU setting (webgpu, cuda): refused on the CPU, which has no float16 kernels'),
  temperature: z.number().positive().default(1).describe('Rollout sampling temperature (also the temperature of the policy loss)'),
  topP: z.number().gt(0).max(1).default(1).describe('Rollout nucleus sampling (1 = off)'),
  topK: int(0).default(0).describe('Rollout top-k sampling (0 = off)'),
  stopStrings: z.array(z.string().max(200)).max(32).default([]).describe('A response also ends when its text contains one of these'),
  promptFormat: z
    .enum(PROMPT_FORMATS)
    .default('raw')
    .describe('How a prompt is given to the model: as written (raw, with the tokenizer’s special tokens), or as a user message in the model’s chat template (chat)'),
  answerFormat: z.enum(['auto', 'math', 'gsm8k', 'multiple-choice']).default('auto').describe('How final answers are extracted and compared'),

  voteTies: z
    .enum(['no-label', 'first'])
    .default('no-label')
    .describe('A vote whose most frequent answers tie: no label and no update (no-label), or the answer seen first wins (first, as TTRL’s reference code)'),

  advantage: z
    .enum(ADVANTAGE_CHOICES)
    .default('grpo')
    .describe('Advantage estimator: GRPO (mean/std), Dr. GRPO (mean only), RLOO (leave-one-out), or GAE from a learned critic (PPO actor–critic: a value head on the policy’s hidden states)'),
  advantageEpsilon: z.number().positive().default(1e-6).describe('ε added to the std in GRPO'),
  // The actor–critic (advantage gae); verl's defaults where it has them.
  gaeGamma: unit().default(1).describe('GAE: discount γ of later rewards (verl: 1.0)'),
  gaeLambda: unit().default(1).describe('GAE: λ, from 1 (each token’s advantage is the return less its value) to 0 (one-step TD errors) (verl: 1.0)'),
  valueClip: z.number().positive().default(0.5).describe('GAE: how far a critic prediction may move from its old value before the clipped value loss takes over (verl’s cliprange_value)'),
  criticLr: z.number().min(0).default(0.001).describe('GAE: learning rate of the critic’s value head (its own AdamW, constant; the head is a linear layer on fixed features, so it takes far more than the policy’s)'),
  criticEpochs: int(1).default(1).describe('GAE: critic updates per step on that step’s rollout (verl’s critic ppo_epochs)'),
  criticWarmup: int(0).default(0).describe('GAE: the first this many steps train only the critic, so the policy’s first advantages come from a critic that has seen returns'),

  mode: z.enum(['full', 'lora']).default('full').describe('Train every weight, or LoRA adapters'),
  loraRank: int(1).default(8).describe('LoRA rank r'),
  loraAlpha: z.number().positive().default(16).describe('LoRA alpha (scale = alpha / r)'),
  loraTargets: z.array(z.enum(LINEAR_MODULES)).min(1).default(['q_proj', 'k_proj', 'v_proj', 'o_proj']).describe('Linear layers that get adapters'),

  lr: z.number().min(0).default(1e-4).describe('Peak learning rate (TTRL: 5e-7 for 7B models; small models need more)'),
  lrSchedule: z.enum(['cosine', 'constant']).default('cosine').describe('Learning-rate schedule after warmup'),
  warmupRatio: unit().default(0.03).describe('Warmup as a fraction of the steps'),
  minLrRatio: unit().default(0).describe('Cosine floor as a fraction of the peak rate'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW weight decay'),
  maxGradNorm: z.number().positive().default(1).describe('Gradients are clipped to this global norm'),
  klCoef: z.number().min(0).default(0.001).describe('KL loss coefficient to the reference model (low_var_kl); 0 = no reference'),
  klTarget: z.number().min(0).default(0).describe('Adaptive KL: the mean token KL to hold; the coefficient starts at klCoef and is adjusted after every step (0 = fixed coefficient)'),
  klHorizon: z.number().min(1).default(100).describe('Adaptive KL: steps over which a sustained 20% KL error moves the coefficient by about 20%'),
  entropyCoef: z
    .number()
    .min(-1)
    .max(1)
    .default(0)
    .describe('Entropy coefficient c of the policy loss (loss − c · mean token entropy): c > 0 is an entropy bonus (exploration), c < 0 is entropy minimisation (sharpening); 0 = off (TTRL)'),
  clipLow: z.number().min(0).default(0.2).describe('PPO clip range below 1'),
  clipHigh: z.number().min(0).default(0.2).describe('PPO clip range above 1'),

  valEvery: int(0).default(10).describe('Validate every this many steps, and at the end (0 = never)'),
  valBeforeTrain: z.boolean().default(true).describe('Validate the starting model (reported as step 0; not when valEvery is 0, which turns validation off)'),
  valSamples: int(1).default(16).describe('k: samples per validation prompt for avg@k, maj@k, pass@k'),
  valTemperature: z.number().min(0).default(0.6).describe('Validation sampling temperature'),
  valTopP: z.number().gt(0).max(1).default(0.95).describe('Validation nucleus sampling'),

  checkpointEvery: int(0).default(10).describe('Save the "last" checkpoint every this many steps, and at the end (0 = only at the end)'),
  bestMetric: z.enum(['avg', 'maj', 'pass']).default('maj').describe('Validation metric (val/<name>@k) that picks the "best" checkpoint'),

  collapseMajorityRatio: unit().default(0.95).describe('Collapse alert: majority ratio at or above this ...'),
  collapseEntropy: z.number().min(0).default(0.05).describe('... while mean token entropy (nats) is at or below this'),
  collapseValDrop: z.number().min(0).default(0.1).describe('Alert when the best-checkpoint metric falls this far below its best (and by more than one evaluation prompt: one prompt of a small set answered otherwise is noise)'),

  // The signal check (signal.ts): each step's rollout is checked before its update.
  signalMinExtraction: unit().default(0.5).describe('Weak-signal alert: share of samples with an extracted answer (code: a runnable function) below this (0 = off)'),
  signalMinLift: z.number().min(0).default(1.05).describe('Weak-signal alert: mean majority ratio below this many times the ratio chance gives (0 = off)'),
  signalMinGroupsWithSignal: unit().default(0.1).describe('Weak-signal alert: share of prompts with any non-zero advantage (code: whose trained rewards differ) below this (0 = off)'),
  signalWindow: int(1).default(3).describe('Weak-signal alert: the checks use the mean of the last this many steps (the first step, the pre-flight check, counts alone)'),
  signalAction: z
    .enum(['warn', 'stop'])
    .default('warn')
    .describe('On a weak-signal alert: warn and train on, or stop the run before that step’s update (status stopped, with the reason; resuming continues past the alert)'),
});

export type CommonRunConfig = z.output<typeof CommonRunConfigSchema>;
