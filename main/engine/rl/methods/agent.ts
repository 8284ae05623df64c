// Agent RL in a text environment (issue 18): the run's prompts are tasks of an environment (a
// dataset made from its seeded task set); per step, `promptsPerStep` tasks (OPID: 16) × `votes`
// episodes each (OPID: group 8) are played turn by turn, and every episode's replies are trained
// with GRPO over its group's episode rewards (outcome-only), or, with OPID, plus the per-token
// re-scoring Δ of a teacher that reads the episode's skills (analyzer → skills → Δ → advantage
// mix, `agent/opid.ts`). The loop is `agent/loop.ts`; defaults as OPID's scripts (jinyangwu/OPID
// on verl-agent: group 8, 16 tasks a step, KL 0.01, γ 0.95, skill weights 1e-3, 30 env steps).
import { z } from 'zod';
import { DEFAULT_ANALYZER_TEMPLATE } from '../../agent/analyzer.ts';
import { PROMPT_STYLES } from '../../agent/prompts.ts';
import { defineMethod } from './types.ts';

export const AGENT_METHOD_ID = 'agent';

export const AGENT_METRICS = {
  success: 'agent/success_rate',
  reward: 'agent/reward',
  length: 'agent/episode_length',
  formatValid: 'agent/format_valid',
  contextFull: 'agent/context_full',
  criticalStepRatio: 'opid/critical_step_ratio',
  teacherAvailable: 'opid/teacher_available',
  analyzerFailed: 'opid/analyzer_failed',
  advEpisode: 'opid/adv/episode_mean',
  advDeltaEpisode: 'opid/adv/delta_episode_mean',
  advDeltaStep: 'opid/adv/delta_step_mean',
  advMean: 'opid/adv/mean',
  advStd: 'opid/adv/std',
  advMax: 'opid/adv/max',
  advMin: 'opid/adv/min',
  valSuccess: 'val/success',
  valReward: 'val/reward',
  valLength: 'val/episode_length',
} as const;

export const ANALYZERS = ['policy', 'model', 'endpoint'] as const;

const settings = z.object({
  agentSignal: z
    .enum(['opid', 'outcome'])
    .default('opid')
    .describe("opid: the episode's advantage plus each reply's re-scoring Δ under the episode's skills; outcome: GRPO on the episode reward alone"),
  agentMaxSteps: z.number().int().min(1).max(200).default(30).describe('Turns an episode may take before it ends unfinished (OPID: 30)'),
  agentHistory: z
    .number()
    .int()
    .min(0)
    .max(200)
    .default(2)
    .describe("Earlier turns each turn's prompt keeps (0: none; at least agentMaxSteps: the whole conversation, trained as one sequence)"),
  agentPromptStyle: z.enum(PROMPT_STYLES).default('opid').describe("How each turn is worded: OPID's prompts, or compact ones (task, observation, request) for small models"),
  agentGamma: z
    .number()
    .gt(0)
    .max(1)
    .default(0.95)
    .describe('γ: an episode of T turns is rewarded γ^(T−1)·R, so a shorter success earns more (1 = the reward alone)'),
  agentMiniBatch: z.number().int().min(1).default(16).describe('Sequences per policy update (PPO mini-batch); a step takes as many updates as its sequences need'),
  opidEpisodeWeight: z.number().min(0).default(1e-3).describe('w_ep: weight of Δ in turns taught by the episode skill'),
  opidStepWeight: z.number().min(0).default(1e-3).describe('w_step: weight of Δ in turns taught by a step skill'),
  opidAnalyzer: z
    .enum(ANALYZERS)
    .default('policy')
    .describe('Who writes the skills: the policy itself, a frozen model (opidAnalyzerModel), or an OpenAI-compatible endpoint (opidAnalyzerUrl)'),
  opidAnalyzerModel: z.string().max(1000).default('').describe('The analyzer model (a model name or folder), with opidAnalyzer model'),
  opidAnalyzerUrl: z.string().max(1000).default('').describe('The endpoint base URL, e.g. http://127.0.0.1:8000/v1, with opidAnalyzer endpoint'),
  opidAnalyzerName: z.string().max(200).default('').describe('The model name the endpoint serves'),
  opidAnalyzerKeyEnv: z.string().max(200).default('').describe("The environment variable holding the endpoint's key (empty: none)"),
  opidAnalyzerTemplate: z
    .string()
    .max(20_000)
    .default(DEFAULT_ANALYZER_TEMPLATE)
    .describe('The analyzer prompt: {task}, {outcome}, {steps} and {trajectory} are filled in; it must ask for JSON with episode_skill and step_skills'),
  opidAnalyzerMaxTokens: z.number().int().min(16).max(8192).default(512).describe("Longest analysis, in tokens (the policy's or the frozen model's; the policy writes at most what its context leaves after the analysis prompt)"),
});

export type AgentSettings = z.output<typeof settings>;

export const agent = defineMethod({
  id: AGENT_METHOD_ID,
  label: 'Agent RL (GRPO / OPID)',
  description: "Episodes in an environment: GRPO over each task's group of episodes on its outcome, plus OPID's skill re-scoring Δ per token.",
  pipeline: 'agent-episodes',
  settings,
  defaults: { promptsPerStep: 16, votes: 8, trainSamples: 8, klCoef: 0.01, promptFormat: 'chat', maxNewTokens: 128, valSamples: 1, valTemperature: 0 },
  metrics: [
    { key: AGENT_METRICS.success, label: 'success rate', description: 'Share of the step’s episodes that reached their goal', chart: 'agent-success', unit: true },
    { key: AGENT_METRICS.reward, label: 'episode reward', description: 'Mean final reward of the step’s episodes (the shop’s partial credit)', chart: 'agent-success', unit: true },
    { key: AGENT_METRICS.valSuccess, label: 'held-out success', description: 'Share of held-out tasks solved (one episode each at the validation temperature)', chart: 'agent-success', unit: true },
    { key: AGENT_METRICS.valReward, label: 'held-out reward', description: 'Mean final reward of the held-out episodes (the shop’s partial credit)', chart: 'agent-success', unit: true },
    { key: AGENT_METRICS.length, label: 'episode length', description: 'Mean turns per episode', chart: 'agent-length' },
    { key: AGENT_METRICS.valLength, label: 'held-out episode length', description: 'Mean turns per held-out episode', chart: 'agent-length' },
    { key: AGENT_METRICS.formatValid, label: 'valid format', description: 'Share of replies with <think> and <action> tags', chart: null, unit: true },
    { key: AGENT_METRICS.contextFull, label: 'context full', description: 'Share of episodes ended because the next turn no longer fitted the model', chart: null, unit: true },
    { key: AGENT_METRICS.criticalStepRatio, label: 'critical steps', description: 'Share of turns taught by a step skill (OPID)', chart: 'opid', unit: true },
    { key: AGENT_METRICS.teacherAvailable, label: 'teacher available', description: 'Share of turns with any skill to teach them (OPID)', chart: 'opid', unit: true },
    { key: AGENT_METRICS.analyzerFailed, label: 'analysis failed', description: 'Share of episodes whose analysis gave no valid skills', chart: 'opid', unit: true },
    { key: AGENT_METRICS.advEpisode, label: 'A_episode', description: 'Mean episode advantage (GRPO over each task’s group)', chart: 'opid-adv' },
    { key: AGENT_METRICS.advDeltaEpisode, label: 'Δ (episode skill)', description: 'Mean Δ of the tokens taught by an episode skill', chart: 'opid-adv' },
    { key: AGENT_METRICS.advDeltaStep, label: 'Δ (step skill)', description: 'Mean Δ of the tokens taught by a step skill', chart: 'opid-adv' },
    { key: AGENT_METRICS.advMean, label: 'advantage mean', description: 'Mean mixed advantage A_episode + w·Δ over the tokens a skill taught (with std, max and min: absent in a step where no skill taught a token)', chart: null },
    { key: AGENT_METRICS.advStd, label: 'advantage std', description: 'Standard deviation of the mixed advantage over the tokens a skill taught', chart: null },
    { key: AGENT_METRICS.advMax, label: 'advantage max', description: 'Largest mixed advantage of a taught token', chart: null },
    { key: AGENT_METRICS.advMin, label: 'advantage min', description: 'Smallest mixed advantage of a taught token', chart: null },
  ],
  charts: [
    { id: 'agent-success', title: 'Success rate', unit: true, hint: 'Share of episodes that reached their goal: training episodes and held-out tasks' },
    { id: 'agent-length', title: 'Episode length', hint: 'Turns per episode (fewer is better once they succeed)' },
    { id: 'opid', title: 'OPID teacher', unit: true, hint: 'Share of turns a skill teaches, by a step skill, and of episodes the analyzer gave no skills' },
    { id: 'opid-adv', title: 'OPID advantages', hint: 'The episode advantage and the mean Δ of the taught tokens (weighted by w_ep / w_step in the update)' },
  ],
  check(s) {
    const problems = [];
    if (s.opidAnalyzer === 'model' && !s.opidAnalyzerModel.trim()) problems.push({ setting: 'opidAnalyzerModel', message: 'opidAnalyzer model needs opidAnalyzerModel: a model name or folder' });
    if (s.opidAnalyzer === 'endpoint') {
      if (!s.opidAnalyzerUrl.trim()) problems.push({ setting: 'opidAnalyzerUrl', message: 'opidAnalyzer endpoint needs opidAnalyzerUrl, e.g. http://127.0.0.1:8000/v1' });
      if (!s.opidAnalyzerName.trim()) problems.push({ setting: 'opidAnalyzerName', message: 'opidAnalyzer endpoint needs opidAnalyzerName: the model name the endpoint serves' });
    }
    if (!s.opidAnalyzerTemplate.includes('{trajectory}')) problems.push({ setting: 'opidAnalyzerTemplate', message: 'opidAnalyzerTemplate must contain {trajectory}, where the episode is filled in' });
    return problems;
  },
});
