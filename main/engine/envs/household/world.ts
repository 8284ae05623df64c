// The household world's rules, worded as ALFWorld's TextWorld games word them ("You arrive at
// cabinet 1. The cabinet 1 is closed.", "You pick up the mug 1 from the countertop 1.", "Nothing
// happens."). The agent stands in the middle of the room or at one receptacle, carries at most
// one object, must be at a receptacle (and have opened it, if it has a door) to see into it, take
// from it or put into it, and cleans, heats or cools what it holds at a sink, microwave or fridge.
// The episode ends, successfully, once the goal holds.
import { NOTHING_HAPPENS, type Environment, type ResetResult, type StepResult, type TaskRef } from '../types.ts';
import { householdTask, type HouseholdGoal, type HouseholdReceptacle, type HouseholdTask } from './tasks.ts';

interface ObjectState {
  name: string;
  kind: string;
  /** A receptacle's name, or 'agent' while carried. */
  location: string;
  clean: boolean;
  hot: boolean;
  cool: boolean;
}

/** "a mug 1, and a apple 2": ALFWorld's listing (always "a", a comma before the last "and"). */
export function listing(names: string[]): string {
  const items = names.map((n) => `a ${n}`);
  if (items.length === 0) return 'nothing';
  if (items.length === 1) return items[0];
  return `${items.slice(0, -1).join(', ')}, and ${items[items.length - 1]}`;
}

/** Actions as ALFWorld's parser takes them: lower case, single spaces, no final period. */
function normalise(action: string): string {
  return action.toLowerCase().replace(/\s+/g, ' ').trim().replace(/\.$/, '').trim();
}

export class HouseholdEnv implements Environment {
  private task: HouseholdTask | undefined;
  private objects: ObjectState[] = [];
  private opened = new Set<string>();
  private at: string | undefined;
  private done = false;

  reset(ref: TaskRef): ResetResult {
    return this.start(householdTask(ref.difficulty, ref.seed));
  }

  /** Start an episode of a given task (reset builds it from its seed; tests write one by hand). */
  start(task: HouseholdTask): ResetResult {
    this.task = task;
    this.objects = this.task.objects.map((o) => ({ ...o, clean: false, hot: false, cool: false }));
    this.opened = new Set();
    this.at = undefined;
    this.done = false;
    const around = listing(this.task.receptacles.map((rc) => rc.name));
    const observation =
      `-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room. Looking quickly around you, you see ${around}.` +
      `\n\nYour task is to: ${this.task.goal.text}`;
    return { observation, task: this.task.goal.text, admissibleActions: this.admissibleActions() };
  }

  /** The task being played (the expert and tests read it; an agent sees only observations). */
  get current(): HouseholdTask {
    if (!this.task) throw new Error('the household environment has no task yet: call reset(task) first');
    return this.task;
  }

  get goal(): HouseholdGoal {
    return this.current.goal;
  }

  /** Where the agent stands: a receptacle's name, or undefined in the middle of the room. */
  get location(): string | undefined {
    return this.at;
  }

  get holding(): ObjectState | undefined {
    return this.objects.find((o) => o.location === 'agent');
  }

  objectStates(): readonly Readonly<ObjectState>[] {
    return this.objects;
  }

  isOpen(receptacle: string): boolean {
    return this.opened.has(receptacle);
  }

  receptacle(name: string): HouseholdReceptacle | undefined {
    return this.current.receptacles.find((rc) => rc.name === name);
  }

  /** Whether the placed object meets the goal's state. */
  satisfies(o: Readonly<ObjectState>, goal: HouseholdGoal): boolean {
    return o.kind === goal.object && (!goal.state || o[goal.state]);
  }

  goalMet(): boolean {
    const goal = this.goal;
    const placed = this.objects.filter((o) => o.location !== 'agent' && this.receptacle(o.location)!.kind === goal.target && this.satisfies(o, goal));
    return placed.length >= goal.count;
  }

  step(action: string): StepResult {
    if (!this.task) throw new Error('the household environment has no task yet: call reset(task) first');
    const observation = this.done ? NOTHING_HAPPENS : this.apply(normalise(action));
    const success = !this.done && observation !== NOTHING_HAPPENS && this.goalMet();
    if (success) this.done = true;
    return { observation, done: this.done, success, reward: success ? 1 : 0, admissibleActions: this.admissibleActions() };
  }

  /** What a receptacle shows when the agent is at it (and, with a door, has opened it). */
  private contents(rc: HouseholdReceptacle): string {
    const inside = this.objects.filter((o) => o.location === rc.name).map((o) => o.name);
    if (rc.openable) {
      if (!this.opened.has(rc.name)) return `The ${rc.name} is closed.`;
      return `The ${rc.name} is open. In it, you see ${listing(inside)}.`;
    }
    return `On the ${rc.name}, you see ${listing(inside)}.`;
  }

  private reachable(rc: HouseholdReceptacle): boolean {
    return this.at === rc.name && (!rc.openable || this.opened.has(rc.name));
  }

  private apply(a: string): string {
    const task = this.current;
    const held = this.holding;
    if (a === 'look') {
      if (!this.at) return `You are in the middle of a room. Looking quickly around you, you see ${listing(task.receptacles.map((rc) => rc.name))}.`;
      return `You are facing the ${this.at}. ${this.contents(this.receptacle(this.at)!)}`;
    }
    if (a === 'inventory') return held ? `You are carrying: a ${held.name}.` : 'You are not carrying anything.';
    let m = /^go to (.+)$/.exec(a);
    if (m) {
      const rc = this.receptacle(m[1]);
      if (!rc || this.at === rc.name) return NOTHING_HAPPENS;
      this.at = rc.name;
      return `You arrive at ${rc.name}. ${this.contents(rc)}`;
    }
    m = /^(open|close) (.+)$/.exec(a);
    if (m) {
      const rc = this.receptacle(m[2]);
      if (!rc || !rc.openable || this.at !== rc.name) return NOTHING_HAPPENS;
      if (m[1] === 'open') {
        if (this.opened.has(rc.name)) return NOTHING_HAPPENS;
        this.opened.add(rc.name);
        return `You open the ${rc.name}. ${this.contents(rc)}`;
      }
      if (!this.opened.has(rc.name)) return NOTHING_HAPPENS;
      this.opened.delete(rc.name);
      return `You close the ${rc.name}.`;
    }
    m = /^take (.+) from (.+)$/.exec(a);
    if (m) {
      const rc = this.receptacle(m[2]);
      const o = this.objects.find((x) => x.name === m![1]);
      if (!rc || !o || held || o.location !== rc.name || !this.reachable(rc)) return NOTHING_HAPPENS;
      o.location = 'agent';
      return `You pick up the ${o.name} from the ${rc.name}.`;
    }
    // ALFWorld's admissible form is "put X in/on Y"; "in", "on" and the newer "move X to Y" mean the same.
    m = /^(?:put (.+) (?:in\/on|in|on) (.+)|move (.+) to (.+))$/.exec(a);
    if (m) {
      const rc = this.receptacle(m[2] ?? m[4]);
      const name = m[1] ?? m[3];
      if (!rc || !held || held.name !== name || !this.reachable(rc)) return NOTHING_HAPPENS;
      held.location = rc.name;
      return `You put the ${held.name} in/on the ${rc.name}.`;
    }
    m = /^(clean|heat|cool) (.+) with (.+)$/.exec(a);
    if (m) {
      const verb = m[1] as 'clean' | 'heat' | 'cool';
      const rc = this.receptacle(m[3]);
      if (!rc || rc.tool !== verb || this.at !== rc.name || !held || held.name !== m[2]) return NOTHING_HAPPENS;
      if (verb === 'clean') held.clean = true;
      if (verb === 'heat') [held.hot, held.cool] = [true, false];
      if (verb === 'cool') [held.cool, held.hot] = [true, false];
      return `You ${verb} the ${held.name} using the ${rc.name}.`;
    }
    m = /^examine (.+)$/.exec(a);
    if (m) {
      const rc = this.receptacle(m[1]);
      if (rc) return this.at === rc.name ? this.contents(rc) : NOTHING_HAPPENS;
      const o = this.objects.find((x) => x.name === m![1]);
      const visible = o && (o.location === 'agent' || (this.at === o.location && this.reachable(this.receptacle(o.location)!)));
      if (!o || !visible) return NOTHING_HAPPENS;
      const states = (['clean', 'hot', 'cool'] as const).filter((s) => o[s]);
      return `This is a ${states.length ? states.join(' and ') : 'normal'} ${o.name}.`;
    }
    return NOTHING_HAPPENS;
  }

  /** Every action that does something now, sorted (as ALFWorld's admissible commands are). */
  admissibleActions(): string[] {
    if (!this.task || this.done) return [];
    const out = ['look', 'inventory'];
    const held = this.holding;
    for (const rc of this.task.receptacles) if (rc.name !== this.at) out.push(`go to ${rc.name}`);
    const here = this.at ? this.receptacle(this.at) : undefined;
    if (here) {
      out.push(`examine ${here.name}`);
      if (here.openable) out.push(`${this.opened.has(here.name) ? 'close' : 'open'} ${here.name}`);
      if (this.reachable(here)) {
        if (held) out.push(`put ${held.name} in/on ${here.name}`);
        else for (const o of this.objects) if (o.location === here.name) out.push(`take ${o.name} from ${here.name}`, `examine ${o.name}`);
      }
      if (held && here.tool) out.push(`${here.tool} ${held.name} with ${here.name}`);
    }
    if (held) out.push(`examine ${held.name}`);
    return out.sort();
  }

  expertAction(): string | undefined {
    return this.done || !this.task ? undefined : householdExpert(this);
  }
}

/**
 * The scripted expert: with the hidden state, fetch a goal object that is not yet placed, fix its
 * state at the tool, carry it to the target, opening doors on the way. Solves every generated task.
 */
export function householdExpert(env: HouseholdEnv): string {
  const goal = env.goal;
  const held = env.holding;
  const task = env.current;
  const goTo = (name: string) => `go to ${name}`;
  const openIfNeeded = (name: string): string | undefined => {
    const rc = env.receptacle(name)!;
    return rc.openable && !env.isOpen(name) ? `open ${name}` : undefined;
  };
  if (held) {
    if (held.kind === goal.object && goal.state && !held[goal.state]) {
      const tool = task.receptacles.find((rc) => rc.tool === ({ clean: 'clean', hot: 'heat', cool: 'cool' } as const)[goal.state!])!;
      if (env.location !== tool.name) return goTo(tool.name);
      return `${tool.tool} ${held.name} with ${tool.name}`;
    }
    // Put it at the target (a non-goal object, which the expert never takes, would go there too).
    const target = task.receptacles.find((rc) => rc.kind === goal.target)!;
    if (env.location !== target.name) return goTo(target.name);
    return openIfNeeded(target.name) ?? `put ${held.name} in/on ${target.name}`;
  }
  const placedKinds = (o: Readonly<ObjectState>) => o.location !== 'agent' && env.receptacle(o.location)!.kind === goal.target;
  const next = env.objectStates().find((o) => o.kind === goal.object && !(placedKinds(o) && env.satisfies(o, goal)));
  if (!next) throw new Error('household expert: no goal object is left to place, yet the goal is not met');
  if (env.location !== next.location) return goTo(next.location);
  return openIfNeeded(next.location) ?? `take ${next.name} from ${next.location}`;
}
