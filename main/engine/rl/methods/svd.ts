// Self-verified distillation (issue 17; METHODS.md; arXiv 2605.26132, abstract only): a method of
// the 'distillation' pipeline, not the RL loop. A round samples K candidates per unlabeled
// question from the current model, passes each through a cascade of self-judgments by the frozen
// model (cycle-consistency, factuality, correctness; V votes a stage, unanimous by default,
// dropped at the first stage that rejects it), keeps at most M survivors per question (one per
// answer), fine-tunes on them (masked token cross-entropy on the response) and validates; the
// next round samples from the improved model. The run's `steps` are its rounds.
//
// The cascade's control flow is `svd/cascade.ts`, its prompts `svd/stages.ts`, a round
// `svd/round.ts`. The hidden answers only measure the cascade (precision and recall per stage).
import { z } from 'zod';
import { STAGE_IDS, SVD_METRICS, stageMetric } from '../../svd/cascade.ts';
import { DOMAINS } from '../../svd/stages.ts';
import type { MetricDefinition } from '../metrics.ts';
import { defineMethod } from './types.ts';

const template = (what: string) =>
  z.string().max(8000).default('').describe(`Self-verified distillation: ${what} (empty: the domain's default, or the model folder's svd.json)`);

/** The svd-prefixed settings a model folder's svd.json may give (a model's own templates). */
export const SVD_MODEL_FILE = 'svd.json';

const STAGE_LABEL: Record<(typeof STAGE_IDS)[number], string> = { cycle: 'cycle-consistency', factuality: 'factuality', correctness: 'correctness' };

const stageMetrics: MetricDefinition[] = STAGE_IDS.flatMap((stage): MetricDefinition[] => [
  { key: stageMetric(stage, 'survivors'), label: `Survivors after ${STAGE_LABEL[stage]}`, chart: 'svd-funnel', description: `Candidates that passed the ${STAGE_LABEL[stage]} stage and every stage before it` },
  { key: stageMetric(stage, 'precision'), label: `Precision after ${STAGE_LABEL[stage]}`, chart: 'svd-precision', unit: true, groundTruth: true, description: `Share of the candidates surviving through ${STAGE_LABEL[stage]} whose answer is right (hidden answers)` },
  { key: stageMetric(stage, 'recall'), label: `Recall after ${STAGE_LABEL[stage]}`, chart: 'svd-recall', unit: true, groundTruth: true, description: `Share of the right candidates that survived through ${STAGE_LABEL[stage]} (hidden answers)` },
]);

export const SFT_LOSS = 'sft/loss';

export const svd = defineMethod({
  id: 'svd',
  label: 'Self-verified distillation',
  description: 'Rounds of K candidates per question, a cascade of self-judgments by the frozen model (cycle-consistency, factuality, correctness), then supervised fine-tuning on the survivors; steps count rounds.',
  pipeline: 'distillation',
  services: { judge: () => true },
  settings: z.object({
    svdQuestions: z.number().int().min(1).default(16).describe('Self-verified distillation: unlabeled questions per round'),
    svdCandidates: z.number().int().min(1).default(4).describe('Self-verified distillation: K, candidates sampled per question (at the run’s temperature)'),
    svdJudgeVotes: z.number().int().min(1).default(3).describe('Self-verified distillation: V, judge votes per candidate and stage (at svdJudgeTemperature)'),
    svdVoteRule: z.enum(['unanimous', 'majority']).default('unanimous').describe('Self-verified distillation: a stage accepts a candidate when every vote does (unanimous) or more than half do (majority)'),
    svdStages: z
      .array(z.enum(STAGE_IDS))
      .min(1)
      .max(STAGE_IDS.length)
      .default([...STAGE_IDS])
      .describe('Self-verified distillation: the cascade’s stages in order (cycle, factuality, correctness); reorder or drop them'),
    svdMaxPerQuestion: z.number().int().min(1).default(2).describe('Self-verified distillation: M, the most survivors per question in the SFT set (one per distinct answer)'),
    svdDomain: z.enum(DOMAINS).default('math').describe('Self-verified distillation: whose default templates the stages use (math, science, code)'),
    svdQuestionPattern: z
      .string()
      .max(1000)
      .default('')
      .describe('Self-verified distillation: a regular expression whose named groups become placeholders of the templates, e.g. (?<a>\\d+) gives {a} (empty: none, or the model folder’s)'),
    svdCycleAsk: template('the prompt that asks for the question behind a candidate ({response}, {answer})'),
    svdCycleJudge: template('the judge prompt comparing the question with the inferred one ({question}, {inferred})'),
    svdCycleMatch: template('instead of svdCycleJudge, the text the inferred question’s extracted answer must equal (e.g. {a})'),
    svdFactualityJudge: template('the judge prompt asking for factual, calculation or logic errors ({question}, {response}, {answer})'),
    svdCorrectnessAsk: template('the prompt that makes the model solve the question itself ({question})'),
    svdCorrectnessJudge: template('the judge prompt comparing the candidate with the model’s own solution ({solution}, {solution_answer})'),
    svdCorrectnessMatch: template('instead of svdCorrectnessJudge, the text the model’s own solution’s extracted answer must equal (e.g. {answer})'),
    svdVerdictYes: z.string().max(50).default('').describe('Self-verified distillation: the marker of a yes verdict (empty: the domain’s [[Y]], or the model folder’s)'),
    svdVerdictNo: z.string().max(50).default('').describe('Self-verified distillation: the marker of a no verdict (empty: the domain’s [[N]], or the model folder’s)'),
    svdJudgeTemperature: z.number().min(0).default(0.7).describe('Self-verified distillation: the sampling temperature of every judge and ask (0 = greedy: every vote the same)'),
    svdJudgeMaxTokens: z.number().int().min(0).max(4096).default(0).describe('Self-verified distillation: the most tokens a judge writes (0: the model folder’s, else 256)'),
    svdAskMaxTokens: z.number().int().min(0).max(4096).default(0).describe('Self-verified distillation: the most tokens an ask (inferred question, own solution) writes (0: the model folder’s, else 256)'),
    svdJudgeChunk: z.number().int().min(1).default(16).describe('Self-verified distillation: candidates per judge call (each call a batch of this × svdJudgeVotes prompts; stored as it answers)'),
    svdEpochs: z.number().int().min(1).default(2).describe('Self-verified distillation: SFT epochs over a round’s survivors'),
    svdBatch: z.number().int().min(1).default(8).describe('Self-verified distillation: SFT sequences per step'),
    svdReview: z.boolean().default(false).describe('Self-verified distillation: pause each round before its SFT so a person can accept or reject survivors (resume to train)'),
  }),
  defaults: { steps: 2, valEvery: 1, lr: 1e-4 },
  charts: [
    { id: 'svd-funnel', title: 'Cascade funnel', hint: 'Candidates, survivors after each stage, and the SFT set, per round' },
    { id: 'svd-precision', title: 'Cascade precision', unit: true, hint: 'Share of survivors that are right, against hidden answers (raw sample accuracy for comparison)' },
    { id: 'svd-recall', title: 'Cascade recall', unit: true, hint: 'Share of the right candidates that survived each stage (hidden answers)' },
    { id: 'sft', title: 'SFT loss', hint: 'Mean masked token cross-entropy of the round’s fine-tuning on its survivors' },
  ],
  metrics: [
    { key: SVD_METRICS.candidates, label: 'Candidates', chart: 'svd-funnel', description: 'Candidates sampled in the round (questions × K)' },
    ...stageMetrics,
    { key: SVD_METRICS.sftSet, label: 'SFT set', chart: 'svd-funnel', description: 'Survivors fine-tuned on: at most M per question, one per answer, less those a person rejected' },
    { key: SVD_METRICS.rawAccuracy, label: 'Raw sample accuracy', chart: 'svd-precision', unit: true, groundTruth: true, description: 'Share of all candidates whose answer is right (hidden answers): what the cascade improves on' },
    { key: SVD_METRICS.sftPrecision, label: 'SFT set precision', chart: 'svd-precision', unit: true, groundTruth: true, description: 'Share of the SFT set whose answer is right (hidden answers)' },
    { key: SVD_METRICS.judgeAgreement, label: 'Judge agreement', chart: null, unit: true, description: 'Over every stage verdict, the share of its votes that agree with their majority (1: every vote the same)' },
    { key: SVD_METRICS.reviewRejected, label: 'Rejected by review', chart: null, description: 'Survivors a person rejected before the round’s SFT' },
    { key: SFT_LOSS, label: 'SFT loss', chart: 'sft', description: 'Mean masked token cross-entropy on the survivors’ responses over the round’s SFT steps' },
  ],
  check: (s) => [
    ...(new Set(s.svdStages).size === s.svdStages.length ? [] : [{ setting: 'svdStages', message: 'svdStages names a stage twice; each stage runs at most once' }]),
    ...patternProblems(s.svdQuestionPattern),
  ],
});

function patternProblems(pattern: string): { setting: string; message: string }[] {
  if (pattern === '') return [];
  try {
    new RegExp(pattern);
    return [];
  } catch (e) {
    return [{ setting: 'svdQuestionPattern', message: `svdQuestionPattern is not a regular expression: ${(e as Error).message}` }];
  }
}
