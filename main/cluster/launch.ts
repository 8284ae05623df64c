// A run's settings as verl's command-line overrides (Hydra keys of verl's ppo_trainer.yaml, read
// at verl b178a3cd: verl/trainer/config/_generated_ppo_trainer.yaml), and the launch script that
// passes them. Every setting verl has no counterpart for is listed in the script as a comment, so
// a person sees what the cluster run does differently. The loggers are set so the run can be
// brought back: verl's file logger (VERL_FILE_LOGGER_PATH, `{step, data}` per line) and its
// rollout dump (trainer.rollout_data_dir, `{step}.jsonl`).
import type { RunConfig } from '../engine/rl/config.ts';

/** Where, inside the exported folder, verl writes what `autodidact cluster import` reads. */
export const CLUSTER_FILES = {
  manifest: 'autodidact-cluster.json',
  train: 'data/train.parquet',
  val: 'data/val.parquet',
  rewardFunction: 'reward_fn.py',
  reviewedLabels: 'reviewed-labels.json',
  launch: 'launch.sh',
  readme: 'README.md',
  metrics: 'verl/metrics.jsonl',
  rollouts: 'verl/rollouts',
} as const;

/** TTRL's fork of verl (PRIME-RL/TTRL, urlvr-dev: verl/trainer/config/ppo_trainer_ttrl.yaml) scores these methods by its own estimators. */
const TTRL_ESTIMATORS: Record<string, string> = {
  'self-certainty': 'self_certainty',
  'token-entropy': 'token_level_entropy',
  'trajectory-likelihood': 'trajectory_level_entropy',
};

export interface VerlMapping {
  /** key=value overrides, in the order written. */
  overrides: string[];
  /** One line per setting verl has no counterpart for (or maps differently). */
  unmapped: string[];
  /** verl.trainer.main_ppo's --config-name, when the run needs TTRL's fork. */
  configName: string | null;
}

const py = (v: boolean) => (v ? 'True' : 'False');

/** The run's settings as verl overrides (paths relative to $HERE, the exported folder). */
export function verlOverrides(config: RunConfig, hasValidation: boolean): VerlMapping {
  const c = config as RunConfig & Record<string, unknown>;
  const o: string[] = [];
  const unmapped: string[] = [];
  let configName: string | null = null;
  // verl's per-GPU micro-batch: the run's microBatch where set; else 4, which MICRO_BATCH overrides on the cluster.
  const micro = c.microBatch > 0 ? c.microBatch : 4;

  o.push(
    'data.train_files="$HERE/data/train.parquet"',
    'data.val_files="$HERE/data/val.parquet"',
    'data.prompt_key=prompt',
    `data.train_batch_size=${c.promptsPerStep}`,
    `data.max_response_length=${c.maxNewTokens}`,
    `data.max_prompt_length=${c.maxPromptTokens > 0 ? c.maxPromptTokens : '${MAX_PROMPT_LENGTH:-1024}'}`,
    `data.truncation=${c.longPrompts === 'truncate' ? 'middle' : 'error'}`,
    `data.filter_overlong_prompts=${py(c.longPrompts === 'skip')}`,
    `data.seed=${c.seed}`,
    'actor_rollout_ref.model.path="$MODEL"',
    `actor_rollout_ref.rollout.n=${c.votes}`,
    `actor_rollout_ref.rollout.temperature=${c.temperature}`,
    `actor_rollout_ref.rollout.top_p=${c.topP}`,
    `actor_rollout_ref.rollout.top_k=${c.topK > 0 ? c.topK : -1}`,
    `actor_rollout_ref.rollout.val_kwargs.n=${c.valSamples}`,
    `actor_rollout_ref.rollout.val_kwargs.temperature=${c.valTemperature}`,
    `actor_rollout_ref.rollout.val_kwargs.top_p=${c.valTopP}`,
    `actor_rollout_ref.rollout.val_kwargs.do_sample=${py(c.valTemperature > 0)}`,
    // One update per step, as here: the mini-batch is the whole step's prompts.
    `actor_rollout_ref.actor.ppo_mini_batch_size=${c.promptsPerStep}`,
    `actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu="\${MICRO_BATCH:-${micro}}"`,
    `actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu="\${MICRO_BATCH:-${micro}}"`,
    `actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu="\${MICRO_BATCH:-${micro}}"`,
    `actor_rollout_ref.actor.optim.lr=${c.lr}`,
    `actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=${c.warmupRatio}`,
    `actor_rollout_ref.actor.optim.lr_scheduler_type=${c.lrSchedule}`,
    `actor_rollout_ref.actor.optim.min_lr_ratio=${c.minLrRatio}`,
    `actor_rollout_ref.actor.optim.weight_decay=${c.weightDecay}`,
    `actor_rollout_ref.actor.grad_clip=${c.maxGradNorm}`,
    `actor_rollout_ref.actor.use_kl_loss=${py(c.klCoef > 0)}`,
    `actor_rollout_ref.actor.kl_loss_coef=${c.klCoef}`,
    'actor_rollout_ref.actor.kl_loss_type=low_var_kl',
    `actor_rollout_ref.actor.entropy_coeff=${c.entropyCoef}`,
    `actor_rollout_ref.actor.clip_ratio_low=${c.clipLow}`,
    `actor_rollout_ref.actor.clip_ratio_high=${c.clipHigh}`,
  );
  if (c.advantage === 'rloo') o.push('algorithm.adv_estimator=rloo');
  else if (c.advantage === 'gae') {
    // verl's actor–critic: its critic is a whole model started from the policy's weights.
    o.push(
      'algorithm.adv_estimator=gae',
      `algorithm.gamma=${c.gaeGamma}`,
      `algorithm.lam=${c.gaeLambda}`,
      'critic.model.path="$MODEL"',
      `critic.optim.lr=${c.criticLr}`,
      `critic.cliprange_value=${c.valueClip}`,
      `critic.ppo_epochs=${c.criticEpochs}`,
      `critic.grad_clip=${c.maxGradNorm}`,
      `critic.ppo_micro_batch_size_per_gpu="\${MICRO_BATCH:-${micro}}"`,
      // verl updates the actor from step critic_warmup on; here the first criticWarmup steps are the critic's alone.
      `trainer.critic_warmup=${c.criticWarmup > 0 ? c.criticWarmup + 1 : 0}`,
    );
  } else o.push('algorithm.adv_estimator=grpo', `algorithm.norm_adv_by_std_in_grpo=${py(c.advantage === 'grpo')}`);
  if (c.advantage === 'drgrpo') o.push('actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum-norm');
  if (c.mode === 'lora') {
    o.push(`actor_rollout_ref.model.lora_rank=${c.loraRank}`, `actor_rollout_ref.model.lora_alpha=${c.loraAlpha}`, `actor_rollout_ref.model.target_modules=[${c.loraTargets.join(',')}]`);
  }
  o.push(
    'reward_model.reward_manager=batch',
    'custom_reward_function.path="$HERE/reward_fn.py"',
    'custom_reward_function.name=compute_score',
    `trainer.total_training_steps=${c.steps}`,
    // Epochs only bound the steps: total_training_steps ends the run.
    'trainer.total_epochs=1000',
    `trainer.test_freq=${hasValidation && c.valEvery > 0 ? c.valEvery : -1}`,
    `trainer.val_before_train=${py(hasValidation && c.valBeforeTrain)}`,
    `trainer.save_freq=${c.checkpointEvery > 0 ? c.checkpointEvery : -1}`,
    "trainer.logger='[\"console\",\"file\"]'",
    'trainer.rollout_data_dir="$HERE/verl/rollouts"',
    'trainer.project_name=autodidact',
    'trainer.experiment_name="$EXPERIMENT"',
    'trainer.default_local_dir="$HERE/verl/checkpoints"',
    'trainer.n_gpus_per_node="${GPUS_PER_NODE:-8}"',
    'trainer.nnodes="${NODES:-1}"',
  );

  const estimator = TTRL_ESTIMATORS[c.method];
  if (estimator) {
    configName = 'ppo_trainer_ttrl.yaml';
    o.push('unsupervised_reward.enable=True', 'unsupervised_reward.type=certainty', `unsupervised_reward.estimator=${estimator}`);
    unmapped.push(`method=${c.method}: scored by TTRL's fork (unsupervised_reward.estimator=${estimator}), not by Autodidact's module; its settings below do not apply`);
  } else if (c.method !== 'ttrl') {
    unmapped.push(`method=${c.method}: verl and TTRL's fork have no counterpart; the cluster run trains with TTRL's majority vote (reward_fn.py)`);
  }
  if (c.trainSamples < c.votes) {
    unmapped.push(
      `trainSamples=${c.trainSamples}: verl trains on every vote (rollout.n=${c.votes}); TTRL's fork could vote on ${c.votes} and train on ${c.trainSamples} ` +
        `(--config-name=ppo_trainer_ttrl.yaml ttrl.enable=True ttrl.n_votes_per_prompt=${c.votes} ttrl.n_samples_per_prompt=${c.trainSamples} actor_rollout_ref.rollout.n=${c.trainSamples}), ` +
        'but then its own vote sets the labels and reviewed labels do not reach the run',
    );
  }
  if (c.promptFormat === 'raw') unmapped.push("promptFormat=raw: verl always puts a prompt in the model's chat template (as promptFormat=chat)");
  if (c.stopStrings.length) unmapped.push(`stopStrings=${JSON.stringify(c.stopStrings)}: verl's rollout config has no stop strings`);
  if (c.klTarget > 0) unmapped.push(`klTarget=${c.klTarget}, klHorizon=${c.klHorizon}: verl's adaptive KL controller acts on the KL in the reward, not on the KL loss; the loss coefficient stays ${c.klCoef}`);
  if (c.advantage === 'gae') {
    unmapped.push(
      `criticLr=${c.criticLr}: here the critic is a value head (hidden → 1) on the policy's hidden states; verl's is a separate copy of the model, which usually wants a far smaller rate (its default 1e-5)`,
    );
  }
  if (c.advantage === 'grpo') unmapped.push(`advantageEpsilon=${c.advantageEpsilon}: verl adds its own epsilon (1e-6) to the std`);
  if (c.maxPromptTokens === 0) unmapped.push('maxPromptTokens=0 (the model\'s context): verl needs a length; MAX_PROMPT_LENGTH (default 1024) sets it');
  if (!hasValidation) unmapped.push('valEvery, valBeforeTrain: the dataset has no labeled eval items, so the cluster run does not validate (val.parquet repeats the training prompts only because verl needs a file)');
  unmapped.push(`bestMetric=${c.bestMetric}: verl keeps no best checkpoint; it saves every save_freq steps`);
  unmapped.push(
    'collapseMajorityRatio, collapseEntropy, collapseValDrop, signalMinExtraction, signalMinLift, signalMinGroupsWithSignal, signalWindow, signalAction: ' +
      "Autodidact's collapse and signal watch do not run on the cluster",
  );
  unmapped.push(`answerFormat=${c.answerFormat}, voteTies=${c.voteTies}: applied by reward_fn.py`);
  return { overrides: o, unmapped, configName };
}

/** launch.sh: the overrides, with the paths the import reads. */
export function launchScript(runLabel: string, experiment: string, modelHint: string, mapping: VerlMapping): string {
  const configFlag = mapping.configName ? ` --config-name=${mapping.configName}` : '';
  return [
    '#!/usr/bin/env bash',
    `# Launches ${runLabel} on verl (written by 'autodidact cluster export'; README.md says how).`,
    '# Extra verl overrides can follow on the command line: ./launch.sh trainer.nnodes=2 ...',
    'set -euo pipefail',
    'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
    `MODEL="\${MODEL:?set MODEL to the model folder or Hugging Face id on the cluster (the run used ${modelHint.replace(/["$`\\]/g, '')})}"`,
    `EXPERIMENT="\${EXPERIMENT:-${experiment}}"`,
    'mkdir -p "$HERE/verl/rollouts"',
    '# The metrics, one JSON line per step ({"step": N, "data": {...}}), read back by autodidact cluster import.',
    'export VERL_FILE_LOGGER_PATH="$HERE/verl/metrics.jsonl"',
    '',
    '# Settings of the run that verl does not take as they are:',
    ...mapping.unmapped.map((u) => `#   ${u.replace(/\n/g, ' ')}`),
    '',
    `python3 -m verl.trainer.main_ppo${configFlag} \\`,
    ...mapping.overrides.map((x) => `  ${x} \\`),
    '  "$@"',
    '',
  ].join('\n');
}
