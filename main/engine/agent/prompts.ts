// What an agent model reads and writes each turn, in OPID's (verl-agent's) format: the first
// user message names the environment, the task, the observation and the admissible actions and
// asks for reasoning in <think> </think> and the action in <action> </action>; each later user
// message carries the new observation and actions (the earlier turns are the conversation
// itself). The reply's action is what lies between the first <action> and </action>, lower
// case, as verl-agent's alfworld/webshop projections read it.

export interface TurnView {
  task: string;
  observation: string;
  admissibleActions: readonly string[];
  /** 1 for the first turn. */
  step: number;
}

export const AGENT_SETTINGS: Record<string, { intro: string }> = {
  household: { intro: 'You are an expert agent operating in the ALFRED Embodied Environment.' },
  shop: { intro: 'You are an expert autonomous agent operating in the WebShop e-commerce environment.' },
};

const ASK =
  "Now it's your turn to take an action.\n" +
  'You should first reason step-by-step about the current situation. This reasoning process MUST be enclosed within <think> </think> tags.\n' +
  "Once you've finished your reasoning, you should choose an admissible action for current step and present it within <action> </action> tags.";

function actions(list: readonly string[]): string {
  return list.map((a) => `'${a}'`).join(', ');
}

/**
 * How turns are worded: 'opid', OPID's full prompts; 'compact', the task, the observation (without
 * its own copy of the task), the admissible actions (less the clicks on texts the observation
 * shows) and the request only (no instructions), for
 * small models whose context OPID's prompts would fill in a few turns (tiny-chars reads 1,024
 * characters). The actions are listed so that a character model can copy one rather than spell
 * object names and product ids from memory. Both keep the task line and the "Now it's your turn"
 * anchor the teacher's skill is placed by.
 */
export const PROMPT_STYLES = ['opid', 'compact'] as const;
export type PromptStyle = (typeof PROMPT_STYLES)[number];

/** The user message of one turn. */
export function turnMessage(envId: string, view: TurnView, style: PromptStyle = 'opid'): string {
  const setting = AGENT_SETTINGS[envId];
  if (!setting) throw new Error(`no agent prompt for environment "${envId}" (known: ${Object.keys(AGENT_SETTINGS).join(', ')})`);
  if (style === 'compact') {
    // The task on every turn, so a turn read without the earlier ones (history 0) still knows it.
    const observation = withoutTaskEcho(view.observation, view.task);
    // A click on a text the page shows is not listed again: the shop's pages are their own list.
    const shown = observation.toLowerCase();
    const listed = view.admissibleActions.filter((a) => !shown.includes(/^click\[(.*)\]$/.exec(a)?.[1] ?? '\u0000'));
    const list = listed.length > 0 ? `\nActions: ${actions(listed)}` : '';
    return `Your task is to: ${view.task}\nStep ${view.step}: ${observation}${list}\nNow it's your turn.`;
  }
  const now =
    `Your current observation is: ${view.observation}\n` + `Your admissible actions of the current situation are: [${actions(view.admissibleActions)}].`;
  if (view.step === 1) return `${setting.intro} Your task is to: ${view.task}\n${now}\n\n${ASK}`;
  return `You are now at step ${view.step}. ${now}\n\n${ASK}`;
}

/**
 * The observation less the copy of the task the environments print in it (the household's first
 * "Your task is to: …", every shop page's "Instruction: [SEP] … [SEP]"), which the compact task
 * line already carries: a shop page would otherwise hold its instruction twice.
 */
export function withoutTaskEcho(observation: string, task: string): string {
  const t = task.trim();
  if (!t) return observation;
  const esc = t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return observation
    .replace(new RegExp(`\\s*Your task is to: ${esc}\\s*`), ' ')
    .replace(new RegExp(`Instruction: \\[SEP\\] ${esc}\\s*\\[SEP\\] `), '')
    .trim();
}

export interface ParsedAction {
  /** The action to send to the environment (the reply's last 30 characters when it has no tags). */
  action: string;
  /** The reply has <think>…</think> and <action>…</action> (verl-agent's validity). */
  formatValid: boolean;
}

/** The action in a reply, and whether the reply has the asked-for form. */
export function parseAgentAction(reply: string): ParsedAction {
  const lower = reply.toLowerCase();
  const start = lower.indexOf('<action>');
  const end = lower.indexOf('</action>', start + 1);
  if (start < 0 || end < 0) return { action: lower.slice(-30), formatValid: false };
  const action = lower.slice(start + '<action>'.length, end).trim();
  const thought = /<think>[\s\S]*?<\/think>/.test(lower);
  return { action, formatValid: thought && action.length > 0 };
}

/** The reply the scripted expert gives for an action (what the warm start teaches). */
export function expertReply(action: string, thought = ''): string {
  return `<think>${thought}</think><action>${action}</action>`;
}

export interface TurnSkills {
  episodeSkill?: string;
  stepSkill?: string;
}

const ANCHOR = "Now it's your turn";

/** `block` placed after `at` characters of `text`, a blank line on each side (OPID's spacing). */
function insertAt(text: string, at: number, block: string): string {
  const prefix = text.slice(0, at).trimEnd();
  const suffix = text.slice(at).trimStart();
  return [prefix, block, suffix].filter(Boolean).join('\n\n');
}

/**
 * The teacher's view of a turn for OPID's re-scoring: the same user message with one skill added,
 * the step skill where there is one, else the episode skill (OPID's "step_priority" mode),
 * worded and placed as its build_augmented_observation_text places them: episode guidance after
 * the task line (before "Now it's your turn" in turns without one), step guidance before
 * "Now it's your turn".
 */
export function withSkill(userMessage: string, skills: TurnSkills): string {
  const step = skills.stepSkill?.trim();
  const episode = skills.episodeSkill?.trim();
  const anchor = userMessage.indexOf(ANCHOR);
  const beforeAnchor = anchor >= 0 ? anchor : userMessage.length;
  if (step) {
    return insertAt(userMessage, beforeAnchor, `**Critical-Step Guidance**\nUse this current-step guidance for this decision only:\n[${step}]`);
  }
  if (episode) {
    const block = `**Episode-Level Guidance**\nRefer to this episode-level guidance when deciding what action to take in the current episode:\n[${episode}]`;
    const task = /^.*\bYour task is to:.*(?:\n|$)/m.exec(userMessage);
    return insertAt(userMessage, task ? task.index + task[0].length : beforeAnchor, block);
  }
  return userMessage;
}
