// Consistency prior × bounded self-judge (self-evolving reasoning without labels; reference code
// OPPO-Mente-Lab/LLM-Self-Judge, METHODS.md). The group's answers give each response a prior b_i:
// when the top answer holds more than priorThreshold (0.85) of the group, b_i = 1 for agreeing
// with it and 0 otherwise; else b_i = count(a_i) / n, the share of its answer (0 without one). A
// frozen judge (the model the run started from) scores each response s_i ∈ [0, 1]: the
// probability of its "yes" verdict, a score it writes between markers, or (written-verdict) the
// probability of "yes" at the last yes/no word it writes after working the question again (a
// judge that re-solves and then compares; the written word alone where no token can be read for
// it). The factor
//   g(s) = clip(1 + 0.2·σ((s − 0.95)/0.02) − 0.2·σ((0.40 − s)/0.05), 0.8, 1.2)
// rewards a confident yes by up to 20% and a clear no by as much, and leaves the middle alone; so
// the judge can nudge the prior but never overturn it. r_i = clip(b_i·g(s_i) + fmt_i, 0, 1), with
// fmt_i = −0.5 for a response without an extractable answer. Advantages are group-relative
// without std normalisation (Dr. GRPO; the reference's βr − logsumexp(βr) with β = 1 equals r −
// mean r after centring). Defaults as the reference: 8 samples, KL 0.01, judge temperature 1.0 /
// top-p 0.9 (score mode), score between [BEGIN SCORES] and [END SCORES].
import { z } from 'zod';
import { majorityVote } from '../../tasks/answers.ts';
import type { JudgeExchange } from '../rewards.ts';
import { mean } from '../stats.ts';
import { defineMethod } from './types.ts';

/** The factor's shape: where it rises (high, width), where it falls (low, width), and by how much. */
export interface JudgeFactorShape {
  high: number;
  highWidth: number;
  low: number;
  lowWidth: number;
  nudge: number;
}

export const DEFAULT_FACTOR: JudgeFactorShape = { high: 0.95, highWidth: 0.02, low: 0.4, lowWidth: 0.05, nudge: 0.2 };

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** g(s) = clip(1 + a·σ((s − high)/wh) − a·σ((low − s)/wl), 1 − a, 1 + a). */
export function judgeFactor(s: number, shape: JudgeFactorShape = DEFAULT_FACTOR): number {
  const { high, highWidth, low, lowWidth, nudge } = shape;
  const g = 1 + nudge * sigmoid((s - high) / highWidth) - nudge * sigmoid((low - s) / lowWidth);
  return Math.min(1 + nudge, Math.max(1 - nudge, g));
}

/**
 * The consistency prior of each response: 1/0 for agreeing with the top answer when its share is
 * above `threshold`, else its answer's share of the group (0 without an answer).
 */
export function consistencyPrior(clusterOf: readonly number[], counts: readonly number[], threshold: number): { prior: number[]; topShare: number; confident: boolean } {
  const n = clusterOf.length;
  let top = -1;
  counts.forEach((c, i) => {
    if (top < 0 || c > counts[top]) top = i;
  });
  const topShare = top < 0 || n === 0 ? 0 : counts[top] / n;
  const confident = topShare > threshold;
  const prior = clusterOf.map((c) => (c < 0 ? 0 : confident ? (c === top ? 1 : 0) : counts[c] / n));
  return { prior, topShare, confident };
}

const PLACEHOLDER = /\{(question|response|answer)\}/g;

/** The judge's prompt: {question}, {response} and {answer} (the extracted answer, or the response) filled in, in one pass. */
export function fillJudgeTemplate(template: string, values: { question: string; response: string; answer: string | null }): string {
  return template.replace(PLACEHOLDER, (_, name: 'question' | 'response' | 'answer') => (name === 'answer' ? (values.answer ?? values.response) : values[name]));
}

/**
 * The judge's score in [0, 1] from its text: what stands between the markers, a number or JSON with
 * a numeric `overall_score` (the reference's), divided by `scale`; null when there is none or it
 * falls outside [0, 1] (the judge abstains).
 */
export function parseJudgeScore(text: string, start: string, end: string, scale: number): number | null {
  const i = text.indexOf(start);
  if (i < 0) return null;
  const j = text.indexOf(end, i + start.length);
  if (j < 0) return null;
  let value: unknown;
  try {
    value = JSON.parse(text.slice(i + start.length, j).trim());
  } catch {
    return null;
  }
  const raw = typeof value === 'number' ? value : value !== null && typeof value === 'object' ? (value as { overall_score?: unknown }).overall_score : undefined;
  if (typeof raw !== 'number' || !Number.isFinite(raw)) return null;
  const s = raw / scale;
  return s >= 0 && s <= 1 ? s : null;
}

export const DEFAULT_JUDGE_TEMPLATE = 'Question: {question}\n\nProposed solution: {response}\n\nIs the final answer of the proposed solution correct? Answer Yes or No.';

const unit = () => z.number().min(0).max(1);

export const consistencyJudge = defineMethod({
  id: 'consistency-judge',
  label: 'Consistency × self-judge',
  description: 'A consistency prior from the group’s answers (1/0 against a confident majority, else the answer’s share), nudged ±20% by a frozen judge’s score of each response.',
  pipeline: 'group-reward',
  services: { judge: () => true },
  settings: z.object({
    judgeTemplate: z
      .string()
      .min(1)
      .max(8000)
      .default(DEFAULT_JUDGE_TEMPLATE)
      .describe('Consistency × self-judge: the judge’s prompt; {question}, {response} and {answer} (the extracted answer) are filled in, and it is encoded as the run’s prompts (promptFormat)'),
    judgeMode: z
      .enum(['verdict', 'score', 'written-verdict'])
      .default('verdict')
      .describe(
        'Consistency × self-judge: the judge’s score is the probability of a yes verdict as its first token (verdict), a number it writes between the score markers (score), or the probability of yes at the last yes/no word it writes after its own working, e.g. a re-solve (written-verdict; 1/0 by the word where its token joins the text before it; no such word: it abstains)',
      ),
    judgeYes: z.array(z.string().min(1).max(50)).min(1).max(16).default(['Yes', 'yes']).describe('Consistency × self-judge, verdict and written-verdict modes: words that say yes (their first tokens count)'),
    judgeNo: z.array(z.string().min(1).max(50)).min(1).max(16).default(['No', 'no']).describe('Consistency × self-judge, verdict and written-verdict modes: words that say no (their first tokens count)'),
    judgeScoreStart: z.string().min(1).max(100).default('[BEGIN SCORES]').describe('Consistency × self-judge, score mode: the marker before the score (a number, or JSON with overall_score)'),
    judgeScoreEnd: z.string().min(1).max(100).default('[END SCORES]').describe('Consistency × self-judge, score mode: the marker after the score'),
    judgeScoreScale: z.number().positive().default(1).describe('Consistency × self-judge, score mode: the written score is divided by this (10 for a 0–10 scale); outside [0, 1] the judge abstains'),
    judgeTemperature: z.number().min(0).default(1).describe('Consistency × self-judge, score and written-verdict modes: the judge’s sampling temperature (0 = greedy)'),
    judgeTopP: z.number().gt(0).max(1).default(0.9).describe('Consistency × self-judge, score and written-verdict modes: the judge’s top-p'),
    judgeMaxTokens: z.number().int().min(1).max(4096).default(64).describe('Consistency × self-judge, score and written-verdict modes: the most tokens the judge writes'),
    priorThreshold: unit().default(0.85).describe('Consistency × self-judge: above this share of the group the top answer’s prior is 1/0, below it each answer’s share'),
    judgeHigh: unit().default(0.95).describe('Consistency × self-judge: judge scores around and above this raise the reward (the factor’s upper midpoint)'),
    judgeHighWidth: z.number().positive().default(0.02).describe('Consistency × self-judge: the width of the factor’s rise at judgeHigh'),
    judgeLow: unit().default(0.4).describe('Consistency × self-judge: judge scores around and below this lower the reward (the factor’s lower midpoint)'),
    judgeLowWidth: z.number().positive().default(0.05).describe('Consistency × self-judge: the width of the factor’s fall at judgeLow'),
    judgeNudge: z.number().min(0).max(1).default(0.2).describe('Consistency × self-judge: the most the judge moves a reward, as a share (the factor lies in [1 − this, 1 + this])'),
    formatPenalty: z.number().min(0).max(1).default(0.5).describe('Consistency × self-judge: subtracted from the reward of a response without an extractable answer'),
  }),
  defaults: { votes: 8, trainSamples: 8, klCoef: 0.01, advantage: 'drgrpo' },
  charts: [{ id: 'self-judge', title: 'Self-judge', hint: 'Mean judge score, the factor it gave, and the final reward; share of groups with a confident majority' }],
  metrics: [
    { key: 'self_judge/judge_score', label: 'Judge score', chart: 'self-judge', unit: true, description: 'Mean judge score s of the step’s responses that it scored' },
    { key: 'self_judge/factor', label: 'Judge factor', chart: 'self-judge', description: 'Mean factor g(s) the judge applied to the prior (1 = no change)' },
    { key: 'self_judge/final_reward', label: 'Final reward', chart: 'self-judge', unit: true, description: 'Mean reward of the step’s responses, clip(prior × factor + format penalty, 0, 1) (a reviewed label’s 0/1 where a person gave one)' },
    { key: 'self_judge/format_penalty', label: 'Format penalty', chart: null, description: 'Mean format penalty (−0.5 for each response without an extractable answer)' },
    { key: 'self_judge/confident_ratio', label: 'Confident groups', chart: 'self-judge', unit: true, description: 'Share of groups whose top answer held more than priorThreshold (prior 1/0)' },
  ],
  check: (s) => [
    ...(/\{(response|answer)\}/.test(s.judgeTemplate) ? [] : [{ setting: 'judgeTemplate', message: 'judgeTemplate must contain {response} or {answer}: the judge has to see what it judges' }]),
    ...(s.judgeLow < s.judgeHigh ? [] : [{ setting: 'judgeLow', message: `judgeLow (${s.judgeLow}) must be below judgeHigh (${s.judgeHigh})` }]),
  ],
  // The judge's prompt holds a training prompt and a response of up to maxNewTokens tokens, and
  // the judge writes after it: refused at launch when that cannot fit, rather than at step 1.
  checkLaunch: (s, launch) => {
    const around = launch.encode(fillJudgeTemplate(s.judgeTemplate, { question: launch.longestPrompt.text, response: '', answer: '' })).length;
    const judgeTokens = s.judgeMode === 'verdict' ? 1 : s.judgeMaxTokens;
    const need = around + launch.maxNewTokens + judgeTokens;
    if (need <= launch.contextLength) return [];
    return [
      {
        setting: 'judgeTemplate',
        message:
          `the judge's prompt (judgeTemplate) about the longest training prompt (${launch.longestPrompt.label}) takes ${around} tokens before the response, up to ${launch.maxNewTokens} more with a response (maxNewTokens), ` +
          `and the judge writes ${judgeTokens} (${s.judgeMode === 'verdict' ? 'its verdict' : 'judgeMaxTokens'}): ${need} tokens, more than the ${launch.contextLength} positions ${launch.model} reads. ` +
          `Shorten judgeTemplate${s.judgeMode !== 'verdict' ? ', lower judgeMaxTokens' : ''} or lower maxNewTokens`,
      },
    ];
  },
  scorer: (s, run) => async (group, context) => {
    const { judge } = context;
    if (!judge) throw new Error('the consistency-judge method needs the judge service in its scorer context (the run loop gives it to methods with services.judge)');
    const n = group.samples.length;
    const vote = majorityVote(
      group.samples.map((x) => x.answer),
      { format: run.answerFormat },
    );
    const counts = vote.clusters.map((c) => c.count);
    const { prior, topShare, confident } = consistencyPrior(vote.clusterOf, counts, s.priorThreshold);
    // Every response is judged (one batch of fixed size); one without an answer earns 0 whatever the judge says.
    const prompts = group.samples.map((x) => fillJudgeTemplate(s.judgeTemplate, { question: group.prompt, response: x.text, answer: x.answer }));
    let scores: (number | null)[];
    let responses: string[];
    if (s.judgeMode === 'verdict') {
      const verdicts = await judge.verdicts(prompts, [s.judgeYes, s.judgeNo]);
      scores = verdicts.map((v) => v.probabilities[0]);
      responses = verdicts.map((v) => v.greedy);
    } else if (s.judgeMode === 'written-verdict') {
      const written = await judge.writtenVerdicts(prompts, [s.judgeYes, s.judgeNo], { maxNewTokens: s.judgeMaxTokens, temperature: s.judgeTemperature, topP: s.judgeTopP });
      scores = written.map((w) => (w.probabilities ? w.probabilities[0] : w.verdict === null ? null : w.verdict === 0 ? 1 : 0));
      responses = written.map((w) => w.text);
    } else {
      responses = await judge.generate(prompts, { maxNewTokens: s.judgeMaxTokens, temperature: s.judgeTemperature, topP: s.judgeTopP });
      scores = responses.map((t) => parseJudgeScore(t, s.judgeScoreStart, s.judgeScoreEnd, s.judgeScoreScale));
    }
    const shape = { high: s.judgeHigh, highWidth: s.judgeHighWidth, low: s.judgeLow, lowWidth: s.judgeLowWidth, nudge: s.judgeNudge };
    // A judge that gave no score abstains: factor 1.
    const factors = scores.map((x) => (x === null ? 1 : judgeFactor(x, shape)));
    const penalties = group.samples.map((x) => (x.answer === null ? -s.formatPenalty : 0));
    const rewards = prior.map((b, i) => Math.min(1, Math.max(0, b * factors[i] + penalties[i])));
    const exchanges: JudgeExchange[] = prompts.map((prompt, i) => ({ prompt, response: responses[i] }));
    return {
      rewards,
      labeled: vote.clusters.length > 0,
      voteCounts: vote.clusters.map((c) => ({ answer: c.representative, count: c.count })),
      majorityRatio: topShare,
      details: rewards.map((_, i) => ({
        prior: prior[i],
        ...(scores[i] !== null && { judge_score: scores[i] }),
        factor: factors[i],
        format_penalty: penalties[i],
      })),
      judge: exchanges,
      diagnostics: { confident: confident ? 1 : 0, answered: n === 0 ? 0 : vote.clusterOf.filter((c) => c >= 0).length / n },
    };
  },
  // From the details (a reviewed label's 0/1 rewards leave them as they were) and the rewards trained with.
  stepMetrics: (groups) => {
    const details = groups.flatMap((g) => g.score.details ?? []);
    const diagnostics = groups.map((g) => g.score.diagnostics ?? {}).filter((d) => 'confident' in d);
    if (details.length === 0) return {};
    const judged = details.filter((d) => 'judge_score' in d);
    return {
      ...(judged.length > 0 && { 'self_judge/judge_score': mean(judged.map((d) => d.judge_score)) }),
      'self_judge/factor': mean(details.map((d) => d.factor)),
      'self_judge/final_reward': mean(groups.flatMap((g) => g.score.rewards)),
      'self_judge/format_penalty': mean(details.map((d) => d.format_penalty)),
      'self_judge/confident_ratio': mean(diagnostics.map((d) => d.confident)),
    };
  },
});
