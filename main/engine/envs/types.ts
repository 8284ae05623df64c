// The interface the agent run loop drives: a text environment that is reset to a task and then
// stepped with the agent's action text, turn by turn, as ALFWorld's and WebShop's gym wrappers are
// (verl-agent's env managers, which OPID builds on). Every environment here is deterministic given
// its task: a task is (difficulty, seed), so a task set is a list of seeds and an episode can be
// replayed action by action.

export const DIFFICULTIES = ['easy', 'medium', 'hard'] as const;
export type Difficulty = (typeof DIFFICULTIES)[number];

/** One task of one environment: everything the environment needs to build it. */
export interface TaskRef {
  env: string;
  difficulty: Difficulty;
  seed: number;
}

export interface ResetResult {
  /** The first observation, in the environment's own wording (it includes the goal). */
  observation: string;
  /** The goal alone, e.g. "put a clean mug in coffeemachine." (the prompt's task line). */
  task: string;
  /** The actions that do something now, in the environment's own syntax. */
  admissibleActions: string[];
}

export interface StepResult {
  observation: string;
  /** The episode is over: the goal is reached (household) or something was bought (shop). */
  done: boolean;
  /** The goal is fully met (the shop: a purchase scored 1). */
  success: boolean;
  /** This step's reward: 1 on success in the household, WebShop's partial credit on a purchase. */
  reward: number;
  admissibleActions: string[];
}

/**
 * A running environment. `step` never throws on the agent's text: an action it cannot parse or
 * carry out gets "Nothing happens." and changes nothing, as in ALFWorld. Stepping a finished
 * episode does the same (the episode stays done).
 */
export interface Environment {
  reset(task: TaskRef): ResetResult;
  step(action: string): StepResult;
  admissibleActions(): string[];
  /**
   * The scripted expert's next action (it reads the hidden state, as ALFWorld's handcoded expert
   * reads the PDDL state), or undefined when the episode is over. Used to make supervised warm-up
   * episodes; an agent never sees it.
   */
  expertAction(): string | undefined;
}

export interface EnvironmentDefinition {
  id: string;
  label: string;
  description: string;
  create(): Environment;
  /**
   * The content of a task as a canonical string (its layout and goal), so task sets can keep
   * held-out tasks apart from training tasks by what they are, not only by their seed.
   */
  taskKey(task: TaskRef): string;
}

/** What an environment answers to an action it cannot carry out (ALFWorld's wording). */
export const NOTHING_HAPPENS = 'Nothing happens.';
