import { describe, expect, it } from 'vitest';
import { DIFFICULTIES, NOTHING_HAPPENS, environment, taskSet } from '../../../main/engine/envs/index.ts';
import { HouseholdEnv, listing } from '../../../main/engine/envs/household/world.ts';
import { householdTask, type HouseholdTask } from '../../../main/engine/envs/household/tasks.ts';
import { mulberry32 } from '../../../main/engine/runtime/rng.ts';

// A small kitchen written by hand: the mug is in a closed cabinet, the goal wants it clean in the
// coffee machine.
const KITCHEN: HouseholdTask = {
  room: 'kitchen',
  receptacles: [
    { name: 'cabinet 1', kind: 'cabinet', openable: true, preposition: 'in' },
    { name: 'coffeemachine 1', kind: 'coffeemachine', openable: false, preposition: 'in' },
    { name: 'countertop 1', kind: 'countertop', openable: false, preposition: 'on' },
    { name: 'fridge 1', kind: 'fridge', openable: true, preposition: 'in', tool: 'cool' },
    { name: 'microwave 1', kind: 'microwave', openable: true, preposition: 'in', tool: 'heat' },
    { name: 'sinkbasin 1', kind: 'sinkbasin', openable: false, preposition: 'in', tool: 'clean' },
  ],
  objects: [
    { name: 'mug 1', kind: 'mug', location: 'cabinet 1' },
    { name: 'apple 1', kind: 'apple', location: 'countertop 1' },
    { name: 'mug 2', kind: 'mug', location: 'countertop 1' },
  ],
  goal: { kind: 'clean', object: 'mug', target: 'coffeemachine', count: 1, state: 'clean', text: 'put a clean mug in coffeemachine.' },
};

function play(env: HouseholdEnv, actions: string[]): string[] {
  return actions.map((a) => env.step(a).observation);
}

describe('household rules', () => {
  it('opens with the room and the goal in ALFWorld\'s words', () => {
    const env = new HouseholdEnv();
    const r = env.start(KITCHEN);
    expect(r.observation).toBe(
      '-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room. Looking quickly around you, you see a cabinet 1, a coffeemachine 1, a countertop 1, a fridge 1, a microwave 1, and a sinkbasin 1.\n\nYour task is to: put a clean mug in coffeemachine.',
    );
    expect(r.task).toBe('put a clean mug in coffeemachine.');
    expect(r.admissibleActions).toEqual([
      'go to cabinet 1', 'go to coffeemachine 1', 'go to countertop 1', 'go to fridge 1', 'go to microwave 1', 'go to sinkbasin 1', 'inventory', 'look',
    ]);
    expect(listing(['x 1'])).toBe('a x 1');
    expect(listing([])).toBe('nothing');
  });

  it('needs a closed receptacle opened, one object in hand, and the state the goal asks for', () => {
    const env = new HouseholdEnv();
    env.start(KITCHEN);
    expect(play(env, ['go to cabinet 1', 'take mug 1 from cabinet 1', 'open cabinet 1', 'take mug 1 from cabinet 1', 'inventory'])).toEqual([
      'You arrive at cabinet 1. The cabinet 1 is closed.',
      NOTHING_HAPPENS,
      'You open the cabinet 1. The cabinet 1 is open. In it, you see a mug 1.',
      'You pick up the mug 1 from the cabinet 1.',
      'You are carrying: a mug 1.',
    ]);
    // One object at a time; cleaning only at a sink; taking only where the agent stands.
    expect(play(env, ['go to countertop 1', 'take apple 1 from countertop 1', 'clean mug 1 with countertop 1', 'take mug 1 from cabinet 1'])).toEqual([
      'You arrive at countertop 1. On the countertop 1, you see a apple 1, and a mug 2.',
      NOTHING_HAPPENS,
      NOTHING_HAPPENS,
      NOTHING_HAPPENS,
    ]);
    // A dirty mug in the coffee machine does not meet the goal.
    const dirty = env.step('go to coffeemachine 1');
    expect(dirty.observation).toBe('You arrive at coffeemachine 1. On the coffeemachine 1, you see nothing.');
    const put = env.step('put mug 1 in coffeemachine 1');
    expect(put).toMatchObject({ observation: 'You put the mug 1 in/on the coffeemachine 1.', done: false, success: false, reward: 0 });
    expect(play(env, ['take mug 1 from coffeemachine 1', 'go to sinkbasin 1', 'clean mug 1 with sinkbasin 1', 'examine mug 1', 'go to coffeemachine 1'])).toEqual([
      'You pick up the mug 1 from the coffeemachine 1.',
      'You arrive at sinkbasin 1. On the sinkbasin 1, you see nothing.',
      'You clean the mug 1 using the sinkbasin 1.',
      'This is a clean mug 1.',
      'You arrive at coffeemachine 1. On the coffeemachine 1, you see nothing.',
    ]);
    const win = env.step('put mug 1 in/on coffeemachine 1');
    expect(win).toMatchObject({ observation: 'You put the mug 1 in/on the coffeemachine 1.', done: true, success: true, reward: 1, admissibleActions: [] });
    // A finished episode stays finished.
    expect(env.step('look')).toMatchObject({ observation: NOTHING_HAPPENS, done: true, success: false, reward: 0 });
  });

  it('heats and cools what is held (one undoes the other), closes doors, looks around', () => {
    const env = new HouseholdEnv();
    env.start(KITCHEN);
    expect(play(env, ['go to countertop 1', 'take apple 1 from countertop 1', 'go to microwave 1', 'heat apple 1 with microwave 1', 'examine apple 1', 'cool apple 1 with microwave 1', 'go to fridge 1', 'cool apple 1 with fridge 1', 'examine apple 1', 'look', 'open fridge 1', 'close fridge 1', 'close fridge 1'])).toEqual([
      'You arrive at countertop 1. On the countertop 1, you see a apple 1, and a mug 2.',
      'You pick up the apple 1 from the countertop 1.',
      'You arrive at microwave 1. The microwave 1 is closed.',
      'You heat the apple 1 using the microwave 1.',
      'This is a hot apple 1.',
      NOTHING_HAPPENS,
      'You arrive at fridge 1. The fridge 1 is closed.',
      'You cool the apple 1 using the fridge 1.',
      'This is a cool apple 1.',
      'You are facing the fridge 1. The fridge 1 is closed.',
      'You open the fridge 1. The fridge 1 is open. In it, you see nothing.',
      'You close the fridge 1.',
      NOTHING_HAPPENS,
    ]);
  });

  it('answers malformed and impossible actions with "Nothing happens." and changes nothing', () => {
    const env = new HouseholdEnv();
    env.start(KITCHEN);
    env.step('go to countertop 1');
    const before = env.admissibleActions();
    const junk = [
      '', '   ', 'fly to the moon', 'go to', 'go to cabinet 9', 'go to countertop 1', 'take mug 9 from countertop 1', 'take mug 2',
      'take mug 1 from cabinet 1', 'put mug 2 in countertop 1', 'open countertop 1', 'close cabinet 1', 'heat mug 2 with microwave 1',
      'examine fridge 1', 'examine mug 1', '<action>go to fridge 1</action>', 'x'.repeat(100_000), '\u0000\u202e', 'go to countertop 1 please',
    ];
    for (const a of junk) expect(env.step(a), JSON.stringify(a.slice(0, 40))).toMatchObject({ observation: NOTHING_HAPPENS, done: false, success: false, reward: 0 });
    expect(env.admissibleActions()).toEqual(before);
    expect(env.location).toBe('countertop 1');
    // Case, spacing and a final period are forgiven, as ALFWorld's parser does.
    expect(env.step('  Take  MUG 2 from countertop 1. ').observation).toBe('You pick up the mug 2 from the countertop 1.');
  });

  it('every admissible action does something, on generated tasks', () => {
    const rand = mulberry32(7);
    for (const difficulty of DIFFICULTIES) {
      for (const task of taskSet({ env: 'household', difficulty, count: 15, seed: 3, split: 'train' })) {
        const env = new HouseholdEnv();
        let actions = env.reset(task).admissibleActions;
        for (let i = 0; i < 40 && actions.length; i++) {
          const a = actions[rand() % actions.length];
          const r = env.step(a);
          expect(r.observation, `${JSON.stringify(task)}: ${a}`).not.toBe(NOTHING_HAPPENS);
          actions = r.admissibleActions;
        }
      }
    }
  });
});

describe('household tasks', () => {
  it('are reproducible from their seed and differ between seeds', () => {
    expect(householdTask('hard', 42)).toEqual(householdTask('hard', 42));
    expect(householdTask('hard', 42)).not.toEqual(householdTask('hard', 43));
  });

  it('follow their difficulty: goal families, room sizes, and never start solved', () => {
    const families = { easy: new Set<string>(), medium: new Set<string>(), hard: new Set<string>() };
    for (const difficulty of DIFFICULTIES) {
      for (let seed = 0; seed < 300; seed++) {
        const t = householdTask(difficulty, seed);
        families[difficulty].add(t.goal.kind);
        const [lo, hi] = { easy: [5, 7], medium: [8, 11], hard: [12, 16] }[difficulty];
        expect(t.receptacles.length).toBeLessThanOrEqual(hi);
        // A room may have fewer receptacles than a level asks for (a bathroom has 16 at most).
        expect(t.receptacles.length).toBeGreaterThanOrEqual(Math.min(lo, 9));
        const env = new HouseholdEnv();
        env.start(t);
        expect(env.goalMet()).toBe(false);
        if (difficulty === 'easy') {
          const start = t.objects.find((o) => o.kind === t.goal.object)!;
          expect(t.receptacles.find((rc) => rc.name === start.location)!.openable).toBe(false);
        }
      }
    }
    expect([...families.easy]).toEqual(['pick']);
    expect([...families.medium].sort()).toEqual(['clean', 'cool', 'heat', 'pick']);
    expect([...families.hard].sort()).toEqual(['clean', 'cool', 'heat', 'pick', 'two']);
  });

  it('the scripted expert solves every task of every difficulty and split within 30 steps', () => {
    const def = environment('household');
    for (const difficulty of DIFFICULTIES) {
      for (const split of ['train', 'test'] as const) {
        for (const task of taskSet({ env: 'household', difficulty, count: 60, seed: 11, split })) {
          const env = def.create();
          env.reset(task);
          let last;
          for (let i = 0; i < 30; i++) {
            const a = env.expertAction();
            if (!a) break;
            last = env.step(a);
            expect(last.observation, a).not.toBe(NOTHING_HAPPENS);
          }
          expect(last?.success, JSON.stringify(task)).toBe(true);
          expect(env.expertAction()).toBeUndefined();
        }
      }
    }
  });
});
