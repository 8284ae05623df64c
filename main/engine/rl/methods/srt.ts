// SRT (self-rewarded training): majority vote with a confidence threshold τ (a prompt whose
// majority ratio is below it gets no label and no update) and optionally the soft reward.
import { z } from 'zod';
import { majorityVoteScorer } from '../rewards.ts';
import { defineMethod } from './types.ts';

export const srt = defineMethod({
  id: 'srt',
  label: 'SRT',
  description: 'Majority vote with a confidence threshold τ and optional soft reward (share of votes).',
  pipeline: 'group-reward',
  settings: z.object({
    srtThreshold: z.number().min(0).max(1).default(0).describe('SRT τ: prompts whose majority ratio is below it get no label and no update (0 = off)'),
    softReward: z.boolean().default(false).describe('SRT soft reward: a sample earns the share of votes its answer got'),
  }),
  metrics: [],
  scorer: (s, run) => majorityVoteScorer({ format: run.answerFormat, threshold: s.srtThreshold, softReward: s.softReward, ties: run.voteTies }),
});
