// The built-in agent model `tiny-agent` (issue 18): a small Llama with the character tokenizer,
// given a supervised warm start on the scripted experts' episodes of both built-in environments
// (household and shop, easy tasks), each turn in the agent's compact prompt (the task, the
// observation, the admissible actions, the request; no earlier turns), and the expert's reply
// `<think></think><action>...</action>` as the answer. It is the model the agent run loop is for:
// one that learned the format and the shape of a solution from few episodes, and fails often
// enough on held-out tasks that RL has room.
//
// The episodes are played DAgger-style (Ross et al. 2011): at a share of the turns (--explore) the
// behaviour takes a random move (household: a "go to"; shop: a click other than "buy now")
// instead of the expert's, and every turn is labelled with what the expert would do there, so the
// model also sees states the expert alone never reaches (a wrong receptacle, a wrong product page)
// and how to go on from them. An agent without memory (history 0) cannot know what the expert
// knows there (where the object lies), so it learns the expert's usual choice instead.
//
// OPID's teacher reads a skill in the observation; a model never shown one would not read it, so
// a share of the turns (--guidance-share) carries the teacher's view (withSkill): a step skill
// naming the action to take, or an episode skill naming the whole plan. The model so learns to
// use guidance when it is there, which is what makes Δ = log π(y | skill + o) − log π(y | o) an
// informative signal on it; without guidance it acts on its own.
//
//   npx tsx resources/models/make-tiny-agent.ts              # resources/models/tiny-agent
//   npx tsx resources/models/make-tiny-agent.ts --out /tmp/ta --episodes 40 --steps 40
//
// Measured (the committed model, defaults; 2 cores shared with four other engineers' work, load
// 11-16): 603,904 parameters, 1,777 turns (household 1,071, shop 706) of 160 tasks per
// environment, 360 steps of 8, final mean loss 0.411, 1,786 s wall (10.6 CPU-minutes). Greedy on
// 32 held-out easy tasks per environment, 8 turns each: household 0/32, shop 0/32 (mean reward 0).
// It learned the reply format and a first move ("go to shelf 1", "search[...]") but not to copy
// names: "take caninga 1 from 1" where the list offers "take alarmclock 1 from shelf 1", and shop
// queries like "search[shongar ce ce pon coffe]", repeated on the results page. So it is still
// weaker than RL needs (outcome-only GRPO gets no success to learn from); listing the admissible
// actions did not make copying learnable in this budget. Also tried, and dropped: a second stage
// of 150 steps on whole turns (every prompt token trained too, so the recurring names teach
// copying; lr 2e-3, whole-turn loss 4.07 -> 0.97 in 614 s): still 0/16 held-out on both, and the
// shop's replies lost their format. A turn is ~95% prompt, so the replies get little of the
// compute; what is left to try: replies that name an action by its number in the list (nothing
// to spell), or this recipe trained for hours rather than minutes.
//
// Reproducible: the random init (make-builtin-models.ts), the tasks (the seeded train splits),
// the expert, the exploration and the batches are all seeded, so the same options give the same
// model; no optimizer state is kept.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeConversation } from '../../main/engine/agent/conversation.ts';
import { type Policy, runEpisode } from '../../main/engine/agent/episode.ts';
import { expertReply, withSkill } from '../../main/engine/agent/prompts.ts';
import { type Environment, type TaskRef, environment, taskSet } from '../../main/engine/envs/index.ts';
import { loadModelFolder } from '../../main/engine/nn/hf-model.ts';
import type { ChatMessage, TextTokenizer } from '../../main/engine/nn/tokenizer.ts';
import { fnv1a32, mulberry32Uniform } from '../../main/engine/runtime/rng.ts';
import { bucketLength } from '../../main/engine/runtime/token-logprobs.ts';
import type { BatchShape, SequenceExample } from '../../main/engine/runtime/trainer.ts';
import { type BuiltinModelOptions, writeBuiltinModel } from './make-builtin-models.ts';
import { trainSupervised } from './sft.ts';

export interface TinyAgentOptions {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seed: number;
  /** Expert episodes of distinct easy training tasks, per environment. */
  episodes: number;
  /** Share of the turns where the behaviour takes a random move instead of the expert's (DAgger). */
  explore: number;
  steps: number;
  batch: number;
  lr: number;
  /** Share of the turns shown with a skill in the observation (OPID's teacher view). */
  guidanceShare: number;
}

export const TINY_AGENT_DEFAULTS: TinyAgentOptions = {
  hidden: 128,
  layers: 3,
  heads: 4,
  kvHeads: 2,
  intermediate: 384,
  seed: 1,
  episodes: 160,
  explore: 0.25,
  steps: 360,
  batch: 8,
  lr: 3e-3,
  guidanceShare: 0.3,
};

/** The settings a run of the built-in agent model uses (the prompts it was taught). */
export const TINY_AGENT_RUN_SETTINGS = { agentPromptStyle: 'compact', agentHistory: 0, maxNewTokens: 96 } as const;

/** The environments the model is warm-started on, easy tasks of each. */
export const TINY_AGENT_ENVS = ['household', 'shop'] as const;

/** Positions the model is built for: a shop results page's turn (about 1,250 tokens) and its reply. */
const MAX_POSITIONS = 1536;
/** Turns a warm-start episode may take (exploration makes some longer than the expert's 3 to 6). */
const MAX_TURNS = 12;

/** The moves DAgger's behaviour may take at random: ones that neither end the episode nor pick up a wrong object. */
function explorable(envId: string, action: string): boolean {
  return envId === 'household' ? action.startsWith('go to ') : action.startsWith('click[') && action !== 'click[buy now]';
}

/** The scripted expert's actions from the start of `task` to its end (its plan). */
export function expertPlan(task: TaskRef, maxTurns = 30): string[] {
  const env = environment(task.env).create();
  env.reset(task);
  const actions: string[] = [];
  for (let a = env.expertAction(); a !== undefined && actions.length < maxTurns; a = env.expertAction()) {
    actions.push(a);
    env.step(a);
  }
  return actions;
}

export interface ExpertTurn {
  env: (typeof TINY_AGENT_ENVS)[number];
  /** The turn's user message (as the policy saw it) and the expert's reply. */
  conversation: ChatMessage[];
}

/** Every turn of the warm-start episodes as the policy saw it, with the expert's reply. */
export async function expertTurns(o: TinyAgentOptions): Promise<ExpertTurn[]> {
  const out: ExpertTurn[] = [];
  const rand = mulberry32Uniform(fnv1a32(`guidance/${o.seed}`));
  const explore = mulberry32Uniform(fnv1a32(`explore/${o.seed}`));
  for (const envId of TINY_AGENT_ENVS) {
    for (const task of taskSet({ env: envId, difficulty: 'easy', count: o.episodes, seed: o.seed, split: 'train' })) {
      const env: Environment = environment(envId).create();
      const labels: string[] = [];
      // The expert labels every turn; the behaviour sometimes takes a random move instead.
      const policy: Policy = () => {
        const label = env.expertAction();
        if (label === undefined) throw new Error(`the ${envId} expert was asked to act in a finished episode of ${JSON.stringify(task)}`);
        labels.push(label);
        const moves = env.admissibleActions().filter((a) => a !== label && explorable(envId, a));
        return expertReply(moves.length > 0 && explore() < o.explore ? moves[Math.floor(explore() * moves.length)] : label);
      };
      const episode = await runEpisode(env, task, policy, { maxSteps: MAX_TURNS, historyTurns: TINY_AGENT_RUN_SETTINGS.agentHistory, promptStyle: TINY_AGENT_RUN_SETTINGS.agentPromptStyle });
      if (o.explore === 0 && !episode.success) throw new Error(`the ${envId} expert failed task ${JSON.stringify(task)}`);
      const plan = expertPlan(task).join(', then ');
      episode.turns.forEach((t, i) => {
        const messages = [...t.messages];
        if (rand() < o.guidanceShare) {
          // A step skill naming the expert's action here, or the episode skill naming its whole plan.
          const last = messages.length - 1;
          const skills = rand() < 0.5 ? { stepSkill: labels[i] } : { episodeSkill: plan };
          messages[last] = { ...messages[last], content: withSkill(messages[last].content, skills) };
        }
        out.push({ env: envId, conversation: [...messages, { role: 'assistant', content: expertReply(labels[i]) }] });
      });
    }
  }
  return out;
}

/** A turn as a training sequence: only the reply (and its end of turn) is trained. */
export function turnExample(tok: TextTokenizer, conversation: ChatMessage[]): SequenceExample {
  const enc = encodeConversation(tok, conversation);
  const trainTokens = new Uint8Array(enc.ids.length);
  const reply = enc.replies.at(-1)!;
  trainTokens.fill(1, reply.start, reply.end);
  return { tokens: enc.ids, trainTokens };
}

interface Stage {
  name: string;
  steps: number;
  lr: number;
}

/** Supervised training from the model folder `from` into `dir` (weights, config and tokenizer; no optimizer state). */
async function trainStage(from: string, dir: string, turns: readonly ExpertTurn[], stage: Stage, o: TinyAgentOptions, log: (s: string) => void, started: number): Promise<number> {
  const model = await loadModelFolder(from);
  const tok = model.tokenizer!;
  const all = turns.map((t) => ({ env: t.env, example: turnExample(tok, t.conversation) }));
  const kept = all.filter((t) => t.example.tokens.length <= MAX_POSITIONS);
  // Each batch holds turns of one environment (alternating), padded to that environment's longest
  // turn: the household's short turns do not pay for the shop's results pages, and two step graphs
  // serve every batch.
  const byEnv = TINY_AGENT_ENVS.map((id) => kept.filter((t) => t.env === id).map((t) => t.example));
  const shapes = byEnv.map((pool): BatchShape => ({ size: o.batch, seqLen: bucketLength(Math.max(...pool.map((r) => r.tokens.length)) - 1, MAX_POSITIONS - 1) }));
  log(
    `${stage.name}: ${kept.length} expert-labelled turns of ${o.episodes} easy tasks per environment (${byEnv.map((x, i) => `${TINY_AGENT_ENVS[i]} ${x.length}`).join(', ')}; ` +
      `${all.length - kept.length} longer than ${MAX_POSITIONS} tokens left out; explore ${o.explore}, ${o.guidanceShare} with a skill), ${stage.steps} steps of ${o.batch}, lr ${stage.lr} (cosine)`,
  );
  const rand = mulberry32Uniform(fnv1a32(`batches/${o.seed}`));
  const batches = Array.from({ length: stage.steps }, (_, step) => {
    const pool = byEnv[step % byEnv.length];
    return { rows: Array.from({ length: o.batch }, () => pool[Math.floor(rand() * pool.length)]), shape: shapes[step % byEnv.length] };
  });
  return trainSupervised(model, {
    out: dir,
    steps: stage.steps,
    lr: stage.lr,
    warmupSteps: Math.min(30, Math.floor(stage.steps / 10)),
    seed: o.seed,
    shape: shapes[0],
    batch: (step) => batches[step],
    log,
    logEvery: 10,
    started,
  });
}

/** The model into `dir`: a random init, then the supervised warm start. */
export async function makeTinyAgent(dir: string, o: TinyAgentOptions, log: (s: string) => void = console.log): Promise<{ seconds: number; turns: number }> {
  const started = Date.now();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'tiny-agent-'));
  try {
    const init = path.join(work, 'init');
    const builtin: BuiltinModelOptions = { name: 'tiny-agent', hidden: o.hidden, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, intermediate: o.intermediate, seed: o.seed, maxPositions: MAX_POSITIONS, vocab: 0, tied: true };
    await writeBuiltinModel(init, builtin);
    const turns = await expertTurns(o);
    log(`tiny-agent: hidden ${o.hidden}, ${o.layers} layers, seed ${o.seed}`);
    await trainStage(init, dir, turns, { name: 'SFT on the replies', steps: o.steps, lr: o.lr }, o, log, started);
    const seconds = (Date.now() - started) / 1000;
    log(`wrote ${dir} (${seconds.toFixed(0)} s)`);
    return { seconds, turns: turns.length };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      seed: { type: 'string' },
      episodes: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      explore: { type: 'string' },
      'guidance-share': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: npx tsx resources/models/make-tiny-agent.ts [--out DIR] [--seed N] [--episodes N] [--steps N] [--batch N] [--lr X] [--explore P] [--guidance-share P]');
    return;
  }
  const d = TINY_AGENT_DEFAULTS;
  const num = (v: string | undefined, fallback: number, flag: string, integer = true) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${flag} must be a positive ${integer ? 'whole ' : ''}number, got "${v}"`);
    return n;
  };
  const shareOf = (flag: 'guidance-share' | 'explore', fallback: number) => {
    const v = values[flag];
    const n = v === undefined ? fallback : Number(v);
    if (!(n >= 0 && n <= 1) || v?.trim() === '') throw new Error(`--${flag} must be a share in [0, 1], got "${v}"`);
    return n;
  };
  const o: TinyAgentOptions = {
    ...d,
    seed: num(values.seed, d.seed, 'seed'),
    episodes: num(values.episodes, d.episodes, 'episodes'),
    steps: num(values.steps, d.steps, 'steps'),
    batch: num(values.batch, d.batch, 'batch'),
    lr: num(values.lr, d.lr, 'lr', false),
    explore: shareOf('explore', d.explore),
    guidanceShare: shareOf('guidance-share', d.guidanceShare),
  };
  await makeTinyAgent(path.resolve(values.out ?? path.join(HERE, 'tiny-agent')), o);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`make-tiny-agent: ${e.message}`);
    process.exit(1);
  });
}
