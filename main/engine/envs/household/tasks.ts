// Household tasks: one room, its receptacles and objects, and a goal in ALFWorld's task families
// (pick and place, clean / heat / cool then place, pick two). A task is a pure function of its
// difficulty and seed.
//   easy:   pick and place; 5-7 receptacles; the object lies in the open
//   medium: pick, clean, heat or cool then place; 8-11 receptacles; the object may be in a closed one
//   hard:   every family, two objects included; 12-16 receptacles (as many as the room has) and more clutter
import { SeededRng } from '../../runtime/rng.ts';
import type { Difficulty } from '../types.ts';
import { ROOMS, ROOM_TYPES, type ObjectKind, type ReceptacleKind, type RoomType } from './scenes.ts';

export type GoalKind = 'pick' | 'clean' | 'heat' | 'cool' | 'two';

export interface HouseholdReceptacle {
  /** "cabinet 2" */
  name: string;
  kind: string;
  openable: boolean;
  preposition: 'in' | 'on';
  tool?: 'clean' | 'heat' | 'cool';
}

export interface HouseholdObject {
  /** "mug 1" */
  name: string;
  kind: string;
  /** The receptacle's name it starts in. */
  location: string;
}

export interface HouseholdGoal {
  kind: GoalKind;
  /** The object kind to place ("mug"). */
  object: string;
  /** The receptacle kind to place it in or on ("coffeemachine"): any of that kind will do. */
  target: string;
  /** How many of them must be there (two for "put two"). */
  count: number;
  /** The state the placed object must have. */
  state?: 'clean' | 'hot' | 'cool';
  text: string;
}

export interface HouseholdTask {
  room: RoomType;
  receptacles: HouseholdReceptacle[];
  objects: HouseholdObject[];
  goal: HouseholdGoal;
}

const LEVELS: Record<Difficulty, { goals: GoalKind[]; receptacles: [number, number]; clutter: [number, number]; visibleStart: boolean }> = {
  easy: { goals: ['pick'], receptacles: [5, 7], clutter: [3, 5], visibleStart: true },
  medium: { goals: ['pick', 'clean', 'heat', 'cool'], receptacles: [8, 11], clutter: [5, 8], visibleStart: false },
  hard: { goals: ['pick', 'clean', 'heat', 'cool', 'two'], receptacles: [12, 16], clutter: [8, 12], visibleStart: false },
};

const TOOL_OF: Partial<Record<GoalKind, 'clean' | 'heat' | 'cool'>> = { clean: 'clean', heat: 'heat', cool: 'cool' };
const STATE_OF = { clean: 'clean', heat: 'hot', cool: 'cool' } as const;

function pick<T>(rng: SeededRng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

function between(rng: SeededRng, [lo, hi]: [number, number]): number {
  return lo + rng.int(hi - lo + 1);
}

function goalText(rng: SeededRng, kind: GoalKind, object: string, prep: string, target: string): string {
  const variants: Record<GoalKind, string[]> = {
    pick: [`put a ${object} ${prep} ${target}.`, `put some ${object} ${prep} ${target}.`],
    clean: [`put a clean ${object} ${prep} ${target}.`, `clean some ${object} and put it ${prep} ${target}.`],
    heat: [`put a hot ${object} ${prep} ${target}.`, `heat some ${object} and put it ${prep} ${target}.`],
    cool: [`put a cool ${object} ${prep} ${target}.`, `cool some ${object} and put it ${prep} ${target}.`],
    two: [`put two ${object} ${prep} ${target}.`, `find two ${object} and put them ${prep} ${target}.`],
  };
  return pick(rng, variants[kind]);
}

/** Build the task of (difficulty, seed). Deterministic. */
export function householdTask(difficulty: Difficulty, seed: number): HouseholdTask {
  const rng = new SeededRng(seed);
  const level = LEVELS[difficulty];
  // Draw until the room can host the goal (a tool for it, a start place apart from the target).
  for (;;) {
    const kind = pick(rng, level.goals);
    const tool = TOOL_OF[kind];
    const rooms = ROOM_TYPES.filter((room) => !tool || ROOMS[room].receptacles.some((rk) => rk.tool === tool));
    const room = pick(rng, rooms);
    const spec = ROOMS[room];
    const objects = spec.objects.filter((o) => !tool || o[tool]);
    const object = pick(rng, objects);
    const targets = spec.receptacles.filter((rk) => !rk.tool || (tool ? rk.tool !== tool : true));
    const target = pick(rng, targets);
    const starts = object.startsIn
      .map((k) => spec.receptacles.find((rk) => rk.kind === k)!)
      .filter((rk) => rk && rk.kind !== target.kind && (!level.visibleStart || !rk.openable));
    if (!starts.length) continue;
    const start = pick(rng, starts);
    const toolKind = tool ? spec.receptacles.find((rk) => rk.tool === tool) : undefined;
    const built = furnish(rng, spec.receptacles, level.receptacles, [start, target, ...(toolKind ? [toolKind] : [])]);
    const count = kind === 'two' ? 2 : 1;
    const placed = placeObjects(rng, spec.objects, built, object, start, target, count, between(rng, level.clutter), level.visibleStart);
    if (!placed) continue;
    const goal: HouseholdGoal = {
      kind,
      object: object.kind,
      target: target.kind,
      count,
      ...(tool ? { state: STATE_OF[tool] } : {}),
      text: goalText(rng, kind, object.kind, target.preposition, target.kind),
    };
    return { room, receptacles: built, objects: placed, goal };
  }
}

/** The room's receptacles: the required kinds once each, then random others up to the count. */
function furnish(rng: SeededRng, kinds: ReceptacleKind[], range: [number, number], required: ReceptacleKind[]): HouseholdReceptacle[] {
  const slots: ReceptacleKind[] = [];
  for (const k of kinds) for (let i = 0; i < k.max; i++) slots.push(k);
  const chosen: ReceptacleKind[] = [];
  for (const k of required) {
    if (chosen.includes(k)) continue;
    chosen.push(k);
    slots.splice(slots.indexOf(k), 1);
  }
  rng.shuffle(slots);
  const want = Math.min(between(rng, range), chosen.length + slots.length);
  while (chosen.length < want) chosen.push(slots.shift()!);
  const out: HouseholdReceptacle[] = [];
  for (const k of kinds) {
    const n = chosen.filter((c) => c === k).length;
    for (let i = 1; i <= n; i++) {
      out.push({ name: `${k.kind} ${i}`, kind: k.kind, openable: k.openable, preposition: k.preposition, ...(k.tool ? { tool: k.tool } : {}) });
    }
  }
  // ALFWorld lists a room's receptacles alphabetically.
  return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name, undefined, { numeric: true }));
}

function placeObjects(
  rng: SeededRng,
  kinds: ObjectKind[],
  receptacles: HouseholdReceptacle[],
  goalObject: ObjectKind,
  start: ReceptacleKind,
  target: ReceptacleKind,
  count: number,
  clutter: number,
  visibleStart: boolean,
): HouseholdObject[] | undefined {
  const numbers = new Map<string, number>();
  const objects: HouseholdObject[] = [];
  const add = (kind: string, location: string) => {
    const n = (numbers.get(kind) ?? 0) + 1;
    numbers.set(kind, n);
    objects.push({ name: `${kind} ${n}`, kind, location });
  };
  const placesFor = (o: ObjectKind) =>
    receptacles.filter((rc) => o.startsIn.includes(rc.kind) && !(o.kind === goalObject.kind && rc.kind === target.kind));
  // The goal's objects: the first where the draw put it, further ones anywhere they may start.
  const first = receptacles.filter((rc) => rc.kind === start.kind);
  add(goalObject.kind, pick(rng, first).name);
  for (let i = 1; i < count; i++) {
    const places = placesFor(goalObject).filter((rc) => !visibleStart || !rc.openable);
    if (!places.length) return undefined;
    add(goalObject.kind, pick(rng, places).name);
  }
  for (let i = 0; i < clutter; i++) {
    const kind = pick(rng, kinds);
    const places = placesFor(kind);
    if (places.length) add(kind.kind, pick(rng, places).name);
  }
  return objects;
}

/** The task as one canonical line: the same text for the same room, layout and goal. */
export function householdTaskKey(task: HouseholdTask): string {
  const layout = task.objects.map((o) => `${o.name}@${o.location}`).join(',');
  return `${task.room}|${task.receptacles.map((rc) => rc.name).join(',')}|${layout}|${task.goal.text}`;
}
