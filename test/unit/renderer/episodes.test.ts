// The episode view's shading of taught reply tokens by OPID's Δ, and the skill each turn names.
import { describe, expect, it } from 'vitest';
import type { SkillView } from '../../../contract/index.ts';
import { MIN_DELTA_SCALE, deltaScale, deltaShade, meanDelta, shadedTokens, turnSkill } from '../../../renderer/src/lib/episodes.ts';

const skill = (id: number): SkillView => ({
  id,
  runId: 1,
  step: 1,
  kind: 'step',
  text: `skill ${id}`,
  sampleId: 9,
  turn: 1,
  task: 'put a mug in the sink',
  useCount: 1,
  editedByPerson: false,
  createdAt: '2026-12-04T00:00:00Z',
  updatedAt: null,
});

describe('the episode view', () => {
  it("shades each taught token by its Δ against the episode's 90th percentile of |Δ|, green up and red down", () => {
    const turns = [{ delta: [0.1, -0.4, 0] }, { delta: null }, { delta: [0.2, Number.NaN] }];
    expect(deltaScale(turns)).toBe(0.4);
    // One outlier does not set the scale for the other tokens: of ten, the ninth largest does.
    expect(deltaScale([{ delta: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, -0.3, 4.2] }])).toBe(0.3);
    // An episode of tiny Δs is not painted at full strength.
    expect(deltaScale([{ delta: [0.001, -0.002] }])).toBe(MIN_DELTA_SCALE);
    expect(deltaScale([{ delta: null }])).toBe(MIN_DELTA_SCALE);
    expect(deltaShade(-0.4, 0.4)).toEqual({ sign: 'down', alpha: 1 });
    expect(deltaShade(0.1, 0.4)).toEqual({ sign: 'up', alpha: 0.25 });
    expect(deltaShade(0.9, 0.4)).toEqual({ sign: 'up', alpha: 1 });
    expect(deltaShade(0, 0.4)).toEqual({ sign: 'none', alpha: 0 });
    expect(deltaShade(Number.NaN, 0.4)).toEqual({ sign: 'none', alpha: 0 });
  });

  it('pairs each token text with its Δ; a turn no skill taught has no shaded tokens', () => {
    expect(shadedTokens({ tokens: ['<a', 'ction>'], delta: [0.2, -0.1] }, 0.2)).toEqual([
      { text: '<a', delta: 0.2, sign: 'up', alpha: 1 },
      { text: 'ction>', delta: -0.1, sign: 'down', alpha: 0.5 },
    ]);
    expect(shadedTokens({ tokens: null, delta: null }, 1)).toBeNull();
    expect(meanDelta({ delta: [0.2, -0.1, Number.NaN] })).toBeCloseTo(0.05, 10);
    expect(meanDelta({ delta: null })).toBeNull();
  });

  it("names the skill that guided a turn from the episode's skills, none where it was deleted", () => {
    const episode = { skills: [skill(3), skill(4)] };
    expect(turnSkill(episode, { skillId: 4 })?.text).toBe('skill 4');
    expect(turnSkill(episode, { skillId: null })).toBeNull();
    expect(turnSkill(episode, { skillId: 7 })).toBeNull();
  });
});
