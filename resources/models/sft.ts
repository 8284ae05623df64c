// The supervised training loop the built-in models' recipes share (make-tiny-arith.ts,
// make-tiny-agent.ts, make-tiny-coder.ts): the engine's trainer on the CPU, full fine-tuning with
// AdamW, a cosine schedule with a warmup from zero, the batches a recipe gives per step; the
// result is written as an ordinary model folder to ship (no optimizer state). Every recipe's
// randomness is its own (its batches and noise), so the same recipe options give the same bytes.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HfModel } from '../../main/engine/nn/hf-model.ts';
import { learningRate } from '../../main/engine/optim/schedule.ts';
import { FILES } from '../../main/engine/runtime/checkpoints.ts';
import { resolveDevice } from '../../main/engine/runtime/devices.ts';
import { type BatchShape, type SequenceExample, Trainer, makeCausalBatch } from '../../main/engine/runtime/trainer.ts';

export interface SupervisedRun {
  /** Where the trained model is written (weights, config, tokenizer). */
  out: string;
  steps: number;
  /** Peak learning rate of the cosine schedule (floor 5% of it). */
  lr: number;
  warmupSteps: number;
  seed: number;
  /** The shape the trainer is built for (the first batch's). */
  shape: BatchShape;
  /** Step `step`'s sequences and the shape they are padded to (default `shape`). */
  batch(step: number): { rows: readonly SequenceExample[]; shape?: BatchShape };
  /** Files of `out` kept across the save (a recipe's own settings beside the weights). */
  keep?: readonly string[];
  log: (s: string) => void;
  /** Log the mean loss of the last 20 steps every this many steps (and at the end). */
  logEvery: number;
  /** When the recipe started (Date.now()), for the elapsed seconds in the log. */
  started: number;
}

/** Train `model` (a random init, loaded from its folder) on the run's batches and write it to `run.out`; the final mean loss of the last 20 steps. */
export async function trainSupervised(model: HfModel, run: SupervisedRun): Promise<number> {
  const padId = model.tokenizer?.padTokenId ?? 0;
  const trainer = await Trainer.create({
    config: model.config,
    weights: model.weights,
    device: await resolveDevice('cpu'),
    mode: { kind: 'full' },
    optimizer: { betas: [0.9, 0.98], weightDecay: 0.01, maxGradNorm: 1 },
    loss: { kind: 'sft' },
    batch: run.shape,
    seed: run.seed,
    source: { dir: model.dir },
  });
  let finalLoss = NaN;
  try {
    const schedule = { kind: 'cosine' as const, lr: run.lr, warmupSteps: run.warmupSteps, warmupFromZero: true, totalSteps: run.steps, minLrRatio: 0.05 };
    const recent: number[] = [];
    for (let step = 0; step < run.steps; step++) {
      const { rows, shape = run.shape } = run.batch(step);
      const r = await trainer.step(makeCausalBatch(rows, shape, padId), learningRate(schedule, trainer.stepCount), { shape });
      recent.push(r.loss);
      if (recent.length > 20) recent.shift();
      finalLoss = recent.reduce((a, b) => a + b, 0) / recent.length;
      if ((step + 1) % run.logEvery === 0 || step + 1 === run.steps) run.log(`  step ${step + 1}/${run.steps}  loss ${finalLoss.toFixed(4)}  ${((Date.now() - run.started) / 1000).toFixed(0)} s`);
    }
    // The save replaces the folder: the files a recipe keeps are put back.
    const kept = await Promise.all((run.keep ?? []).map(async (name) => ({ name, bytes: await fs.readFile(path.join(run.out, name)).catch(() => null) })));
    await trainer.save(run.out);
    for (const { name, bytes } of kept) if (bytes) await fs.writeFile(path.join(run.out, name), bytes);
  } finally {
    await trainer.release();
  }
  // A base model to ship, not a checkpoint to resume: drop the optimizer state.
  await fs.rm(path.join(run.out, FILES.optimizer), { force: true });
  await fs.rm(path.join(run.out, FILES.state), { force: true });
  return finalLoss;
}

/**
 * A synthetic copying row: `ends.prefix` (a BOS), the ids, the separator, the same ids again,
 * `ends.suffix` (an EOS); only the repeat and the suffix are trained. Every trained token can be
 * predicted only by finding where the current context stood before and copying what followed it
 * (an induction head), which a recipe's own rows teach too weakly where the copied part is a few
 * tokens of a long response (a task's constants, an object's name).
 */
export function copyExample(ids: readonly number[], separator: readonly number[], ends: { prefix?: readonly number[]; suffix?: readonly number[] } = {}): SequenceExample {
  const head = [...(ends.prefix ?? []), ...ids, ...separator];
  return { tokens: [...head, ...ids, ...(ends.suffix ?? [])], lossStart: head.length };
}
