// Co-rewarding II (arXiv 2508.00410, tmlr-group/Co-rewarding): the labels come from a teacher,
// not from the policy's own votes. The teacher is an EMA copy of the policy (`rl/teacher.ts`:
// after each update teacher ← α·policy + (1 − α)·teacher, α cosine from 0.01 to 1e-5); it samples
// as many responses to each prompt as the policy did, their majority answer is the prompt's
// pseudo-label, and each of the policy's responses earns 1 for agreeing with it (TTRL's reward
// against the teacher's vote). A policy drifting toward a wrong consensus moves its labels only
// slowly, which guards against the self-confirmation of plain majority voting.
// Defaults as the reference: 8 samples, all trained on, KL 0.001. Where the data has hidden
// answers the run logs how often the teacher's label (`coreward/pseudo_ref_acc`, the label used:
// `coreward/pseudo_acc`) and the policy's own majority (`coreward/pseudo_policy_acc`) are right.
import { z } from 'zod';
import { answersEquivalent, majorityVote } from '../../tasks/answers.ts';
import { mean } from '../stats.ts';
import { defineMethod } from './types.ts';

export const coRewarding = defineMethod({
  id: 'co-rewarding',
  label: 'Co-rewarding (EMA teacher)',
  description: 'Co-rewarding II: a slowly updated (EMA) copy of the policy votes the label; a response earns 1 for agreeing with the teacher’s majority answer.',
  pipeline: 'group-reward',
  settings: z.object({
    teacherAlphaStart: z.number().gt(0).max(1).default(0.01).describe('Co-rewarding: the EMA teacher’s α after the first step (teacher ← α·policy + (1 − α)·teacher)'),
    teacherAlphaEnd: z.number().gt(0).max(1).default(1e-5).describe('Co-rewarding: α after the last step (a cosine schedule between the two)'),
  }),
  services: { teacher: (s) => ({ alphaStart: s.teacherAlphaStart, alphaEnd: s.teacherAlphaEnd }) },
  defaults: { votes: 8, trainSamples: 8, klCoef: 0.001 },
  charts: [{ id: 'coreward', title: 'Teacher and policy', hint: 'How sure the teacher’s vote is, and how often the policy’s own majority agrees with it' }],
  metrics: [
    { key: 'coreward/teacher_majority_ratio', label: 'Teacher majority ratio', chart: 'coreward', unit: true, description: 'Mean share of the teacher’s samples that gave its majority answer' },
    { key: 'coreward/policy_teacher_agreement', label: 'Policy agrees with teacher', chart: 'coreward', unit: true, description: 'Share of prompts whose policy majority answer is the teacher’s label' },
    { key: 'coreward/pseudo_acc', label: 'Label accuracy', chart: 'coreward', unit: true, groundTruth: true, description: 'How often the label trained with (the teacher’s majority) equals the hidden answer' },
    { key: 'coreward/pseudo_ref_acc', label: 'Teacher majority accuracy', chart: null, unit: true, groundTruth: true, description: 'How often the teacher’s majority answer equals the hidden answer' },
    { key: 'coreward/pseudo_policy_acc', label: 'Policy majority accuracy', chart: 'coreward', unit: true, groundTruth: true, description: 'How often the policy’s own majority answer equals the hidden answer (what TTRL would have trained with)' },
  ],
  check: (s) => (s.teacherAlphaEnd > s.teacherAlphaStart ? [{ setting: 'teacherAlphaEnd', message: `teacherAlphaEnd (${s.teacherAlphaEnd}) cannot exceed teacherAlphaStart (${s.teacherAlphaStart})` }] : []),
  scorer: (_s, run) => async (group, context) => {
    const { teacher } = context;
    if (!teacher) throw new Error('the co-rewarding method needs the EMA teacher in its scorer context (the run loop gives it to methods with services.teacher)');
    const n = group.samples.length;
    const answers = group.samples.map((x) => x.answer);
    const taught = await teacher.sample(group.prompt, n);
    const teacherVote = majorityVote(taught.answers, { format: run.answerFormat, ties: run.voteTies });
    const policyVote = majorityVote(answers, { format: run.answerFormat, ties: run.voteTies });
    const label = teacherVote.label;
    const agrees = answers.map((a) => label !== null && a !== null && answersEquivalent(a, label, { format: run.answerFormat }));
    const policyAgrees = label !== null && policyVote.label !== null && answersEquivalent(policyVote.label, label, { format: run.answerFormat });
    return {
      rewards: agrees.map((a) => (a ? 1 : 0)),
      labeled: label !== null,
      pseudoLabel: label,
      // The votes shown and watched for collapse are the policy's own samples.
      voteCounts: policyVote.clusters.map((c) => ({ answer: c.representative, count: c.count })),
      majorityRatio: policyVote.majorityRatio,
      agreesWithLabel: agrees,
      labels: { teacher: label, policy: policyVote.label },
      diagnostics: { teacher_majority_ratio: teacherVote.majorityRatio, policy_teacher_agreement: policyAgrees ? 1 : 0 },
    };
  },
  truthMetrics: { 'coreward/pseudo_acc': 'teacher', 'coreward/pseudo_ref_acc': 'teacher', 'coreward/pseudo_policy_acc': 'policy' },
  stepMetrics: (groups): Record<string, number> => {
    const d = groups.map((g) => g.score.diagnostics ?? {}).filter((x) => 'teacher_majority_ratio' in x);
    if (d.length === 0) return {};
    return { 'coreward/teacher_majority_ratio': mean(d.map((x) => x.teacher_majority_ratio)), 'coreward/policy_teacher_agreement': mean(d.map((x) => x.policy_teacher_agreement)) };
  },
});
