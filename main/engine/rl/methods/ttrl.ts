// TTRL (test-time reinforcement learning): the most frequent answer of the group is the
// pseudo-label; a sample earns 1 when its answer is equivalent to it.
import { z } from 'zod';
import { majorityVoteScorer } from '../rewards.ts';
import { defineMethod } from './types.ts';

export const ttrl = defineMethod({
  id: 'ttrl',
  label: 'TTRL',
  description: 'Majority vote: the most frequent answer is the pseudo-label; samples that agree earn reward 1.',
  pipeline: 'group-reward',
  settings: z.object({}),
  metrics: [],
  scorer: (_settings, run) => majorityVoteScorer({ format: run.answerFormat, ties: run.voteTies }),
});
