// The benchmark harness's output format, on the built-in tiny model: one JSON line per measuring
// command with the documented keys. The side-by-side modes run PyTorch, which the app's tests
// never depend on; they are exercised by the measurements in the issue notes.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { consensusAccuracy } from '../../bench/code-demo.ts';
import { acceptance, readResults, render, smiPeakMb, tableRows } from '../../bench/gpu/table.ts';
import { syntheticPrompts } from '../../bench/rl-step.ts';
import type { StepRecord } from '../../main/engine/rl/loop.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function bench(args: string[]): Promise<{ code: number | null; lines: Record<string, unknown>[]; stderr: string; table: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/index.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, AUTODIDACT_THREADS: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      // JSON lines, and (the methods bench) a table of other lines after them.
      const all = stdout.trim().split('\n').filter((l) => l !== '');
      const lines = all.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const table = all.filter((l) => !l.startsWith('{')).join('\n');
      resolve({ code, lines, stderr, table });
    });
  });
}

const COMMON = ['bench', 'impl', 'model', 'device', 'batch', 'ms_per_step', 'tokens_per_s', 'peak_rss_mb', 'threads'];

describe('npm run bench', () => {
  it('lists every command once', async () => {
    const r = await bench(['--help']);
    const names = [...r.table.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]);
    expect(names).toEqual(expect.arrayContaining(['train', 'compare-train', 'rl-step', 'compare-rl-step', 'methods', 'agent-demo', 'code-demo']));
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('train prints one JSON line with the step time, throughput, memory and losses', async () => {
    const r = await bench(['train', '--model', 'tiny-chars', '--batch', '2', '--seq', '8', '--steps', '2', '--warmup', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(1);
    const line = r.lines[0];
    for (const k of [...COMMON, 'seq', 'loss_first', 'loss_last', 'mode']) expect(line, k).toHaveProperty(k);
    expect(line).toMatchObject({ bench: 'train', impl: 'autodidact', model: 'tiny-chars', device: 'cpu', batch: 2, seq: 8, mode: 'full' });
    expect(line.ms_per_step as number).toBeGreaterThan(0);
    expect(line.tokens_per_s as number).toBeCloseTo((2 * 8) / ((line.ms_per_step as number) / 1000), -1);
    expect(line.peak_rss_mb as number).toBeGreaterThan(10);
    expect(Number.isFinite(line.loss_first)).toBe(true);
  });

  it('rl-step times whole steps of the run loop (rollout, vote, update), every timed step updated', async () => {
    const r = await bench(['rl-step', '--model', 'tiny-chars', '--prompts', '2', '--votes', '3', '--new-tokens', '4', '--prompt-len', '6', '--steps', '2', '--warmup', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(1);
    const line = r.lines[0];
    expect(line).toMatchObject({ bench: 'rl-step', impl: 'autodidact', model: 'tiny-chars', prompts: 2, votes: 3, new_tokens: 4, mode: 'full', steps: 2, updated_steps: 2 });
    // The prompt's 6 characters and the tokenizer's BOS.
    expect(line.prompt_tokens).toBe(7);
    expect(line.ms_per_step as number).toBeGreaterThanOrEqual((line.rollout_ms as number) + (line.update_ms as number) - 1);
    expect(line.response_length as number).toBeGreaterThan(0);
    expect(line.response_length as number).toBeLessThanOrEqual(4);
  });

  it("rl-step's prompts are the reference script's (bench/reference/grpo_step.py prompts(2, 12, 0))", () => {
    expect(syntheticPrompts(2, 12, 0)).toEqual(['omobktxhil i', 'bzw ygvfpamx']);
  });

  it('generate prints one JSON line with tokens per second', async () => {
    const r = await bench(['generate', '--model', 'tiny-chars', '--batch', '3', '--new-tokens', '4', '--repeats', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(1);
    const line = r.lines[0];
    for (const k of [...COMMON, 'new_tokens', 'prompt_len']) expect(line, k).toHaveProperty(k);
    expect(line).toMatchObject({ bench: 'generate', impl: 'autodidact', batch: 3, new_tokens: 4 });
    expect(line.tokens_per_s as number).toBeGreaterThan(0);
  });

  it("gemm times the three products of every linear layer and the LM head, FLOPs matching the model's shapes", async () => {
    const r = await bench(['gemm', '--model', 'tiny-chars', '--batch', '2', '--seq', '8', '--repeats', '2', '--warmup', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(1);
    const line = r.lines[0] as { gemms: Record<string, unknown>[] } & Record<string, unknown>;
    expect(line).toMatchObject({ bench: 'gemm', impl: 'autodidact', model: 'tiny-chars', batch: 2, seq: 8 });
    // tiny-chars: hidden 128, 4 heads and 2 KV heads of 32, MLP 384, 2 layers, 103 tokens, tied.
    const weights = [[128, 128], [64, 128], [384, 128], [128, 384], [103, 128]];
    const counts = [2 * 2, 2 * 2, 2 * 2, 2, 1]; // q+o, k+v, gate+up, down per layer; the LM head once
    expect(line.gemms.map((g) => [g.pass, g.weight, g.count])).toEqual(
      weights.flatMap((w, i) => ['forward', 'input_grad', 'weight_grad'].map((pass) => [pass, w, counts[i]])),
    );
    const tokens = 2 * 8;
    const flops = weights.reduce((s, [o, i], j) => s + counts[j] * 3 * 2 * tokens * o * i, 0);
    expect(line.gflop_per_step).toBeCloseTo(flops / 1e9, 3);
    for (const g of line.gemms) {
      expect(2 * (g.m as number) * (g.n as number) * (g.k as number)).toBe(2 * tokens * (g.weight as number[])[0] * (g.weight as number[])[1]);
      expect(g.ms as number).toBeGreaterThan(0);
    }
    const sum = line.gemms.reduce((s, g) => s + (g.count as number) * (g.ms as number), 0);
    expect(line.gemm_ms_per_step as number).toBeCloseTo(sum, 1);
  });

  it('names a missing flag', async () => {
    const r = await bench(['train', '--model', 'tiny-chars', '--batch', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--seq is required');
  });

  it('methods: every method named runs on the same demo and base, one JSON line each, then a table', async () => {
    const r = await bench(['methods', '--methods', 'ttrl,token-entropy,consistency-judge', '--seeds', '0', '--steps', '1', '--count', '4', '--train-count', '16']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.lines.filter((l) => l.bench === 'methods');
    expect(rows.map((x) => x.method)).toEqual(['ttrl', 'token-entropy', 'consistency-judge']);
    // The self-judge asks tiny-arith in the form it was taught, and that fits its 64 positions (else the row would hold an error).
    expect(rows[2].method_settings).toMatchObject({ judgeTemplate: 'Is it {answer}? {question}', judgeMode: 'written-verdict', judgeYes: ['yes'], judgeNo: ['no'] });
    for (const row of rows) {
      expect(row).toMatchObject({ seed: 0, steps: 1 });
      for (const k of ['base_avg16', 'base_maj16', 'after_avg16', 'after_maj16', 'wall_s']) expect(typeof row[k], k).toBe('number');
      expect(row).toHaveProperty('reward_truth_correlation');
    }
    // One base measurement per seed, shared by every method.
    expect(rows[1].base_avg16).toBe(rows[0].base_avg16);
    // TTRL votes: its labels are scored; token entropy has none.
    expect(typeof rows[0].label_accuracy).toBe('number');
    expect(rows[1].label_accuracy).toBeNull();
    expect(r.table).toMatch(/\| method +\| seed \| base avg@16/);
    expect(r.table).toMatch(/^ttrl: avg@16 [+-]\d+\.\d points over the base \(sd —, 1 seed\)$/m);
  });

  it('methods --advantages: each method once per estimator on the same base, the critic’s explained variance with gae', async () => {
    const r = await bench(['methods', '--methods', 'ttrl', '--advantages', 'grpo,gae', '--seeds', '0', '--steps', '2', '--count', '4', '--train-count', '16']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.lines.filter((l) => l.bench === 'methods');
    expect(rows.map((x) => [x.method, x.advantage])).toEqual([
      ['ttrl', 'grpo'],
      ['ttrl', 'gae'],
    ]);
    expect(rows[1].base_avg16).toBe(rows[0].base_avg16);
    expect(rows[0]).not.toHaveProperty('critic_explained_var');
    expect(typeof rows[1].critic_explained_var).toBe('number');
    expect((rows[1].settings as Record<string, unknown>).advantage).toBe('gae');
    expect(r.table).toMatch(/^ttrl \(gae\): avg@16 [+-]\d+\.\d points over the base \(sd —, 1 seed\)$/m);
    const bad = await bench(['methods', '--methods', 'ttrl', '--advantages', 'grpo,ppo', '--seeds', '0', '--steps', '1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--advantages must be one of grpo, drgrpo, rloo, gae, got "ppo"');
  });

  it('svd-demo: avg@16 before and after each round, and the cascade per stage against the hidden answers', async () => {
    const r = await bench(['svd-demo', '--rounds', '2', '--count', '4', '--questions', '6', '--candidates', '3', '--votes', '2', '--stages', 'correctness,factuality', '--rule', 'majority']);
    expect(r.code, r.stderr).toBe(0);
    const [line] = r.lines;
    expect(line).toMatchObject({ bench: 'svd-demo', model: 'tiny-arith' });
    for (const k of ['base_avg16', 'after_round1_avg16', 'after_round2_avg16', 'wall_s']) expect(typeof line[k], k).toBe('number');
    const rounds = line.rounds as { round: number; candidates: number; raw_accuracy: number; stages: { stage: string; survivors: number }[] }[];
    expect(rounds.map((x) => x.round)).toEqual([1, 2]);
    for (const row of rounds) {
      expect(row.candidates).toBe(18);
      expect(typeof row.raw_accuracy).toBe('number');
      expect(row.stages.map((x) => x.stage)).toEqual(['correctness', 'factuality']);
      // A stage only sees the survivors of the one before.
      expect(row.stages[1].survivors).toBeLessThanOrEqual(row.stages[0].survivors);
    }
    expect(r.table).toMatch(/^svd-demo on tiny-arith: base avg@16 [\d.]+%$/m);
    expect(r.table).toMatch(/^ {2}after correctness +\d+ survivors {2}precision/m);
  });

  it('code-demo: pass@1 of the base once per seed, after self-play without and with the critic, one JSON line each, then a table', async () => {
    const r = await bench(['code-demo', '--seeds', '0', '--steps', '1', '--tasks', '1', '--samples', '2', '--held-out', '2', '--val-samples', '2', '--critic-warmup', '0']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.lines.filter((l) => l.bench === 'code-demo');
    expect(rows.map((x) => [x.config, x.seed])).toEqual([
      ['grpo', 0],
      ['gae', 0],
    ]);
    // The base is measured by the seed's first run only.
    expect(typeof rows[0].base_pass1).toBe('number');
    expect(rows[1].base_pass1).toBeNull();
    for (const row of rows) for (const k of ['after_pass1', 'after_codet', 'after_pass_k', 'labeled_share', 'sample_pass_first', 'sample_pass_last', 'runnable_first', 'runnable_last', 'wall_s']) expect(typeof row[k], k).toBe('number');
    expect(rows[0].critic_explained_var).toBeNull();
    expect(r.table).toMatch(/^ {2}base +pass@1 \d+\.\d% ± /m);
    expect(r.table).toMatch(/^ {2}code-consensus, PPO \+ GAE critic +pass@1 \d+\.\d% ± .*consensus right/m);
    // Each configuration's change is from its own seed's base (one seed: after less base).
    const change = 100 * ((rows[1].after_pass1 as number) - (rows[0].base_pass1 as number));
    expect(r.table).toContain(`change from the seed's base ${change >= 0 ? '+' : ''}${change.toFixed(1)}% ± 0.0%`);
    // A critic warmup of every step (the default 8 against 1 step here) leaves the policy none: refused before any run.
    const warm = await bench(['code-demo', '--seeds', '0', '--steps', '1']);
    expect(warm.code).toBe(2);
    expect(warm.stderr).toContain("--critic-warmup 8 leaves the gae runs' policy no step to learn in: it must be below --steps (1)");
    const bad = await bench(['code-demo', '--configs', 'grpo,ppo']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--configs: "ppo" is not one of grpo, gae');
  }, 120_000);

  it('code-demo: the consensus accuracy is the share of labeled groups whose top set passes the hidden tests', () => {
    const group = (labeled: boolean, top: number | null, hidden: string[]) => ({
      labeled,
      samples: hidden.map((hiddenResult) => ({ hiddenResult })),
      execution: { top, sets: [{ solutions: [1, 0] }, { solutions: [2] }] },
    });
    const records = [
      // Top set 0 starts with sample 1 (fails); top set 1 is sample 2 (passes); an unlabeled group and a group without a top set do not count.
      { step: 1, groups: [group(true, 0, ['pass', 'fail', 'pass']), group(true, 1, ['fail', 'fail', 'pass']), group(false, 1, ['fail', 'fail', 'fail'])] },
      { step: 2, groups: [group(true, null, ['pass', 'pass', 'pass'])] },
    ] as unknown as StepRecord[];
    expect(consensusAccuracy(records)).toBe(0.5);
    expect(consensusAccuracy([])).toBeNull();
  });
});

describe("issue 16's table from measure.sh's results (bench/gpu/table.ts)", () => {
  // Hand-made results: engine and reference lines as measure.sh writes them, and one cut-off line.
  const lines = [
    { case: 'e_q05_lora_fp32', ms_per_step: 450 },
    { case: 'r_q05_lora_fp32', ms_per_step: 150 },
    { case: 'e_q05_lora_mixed', ms_per_step: 420 },
    { case: 'r_q05_lora_mixed', ms_per_step: 100 },
    { case: 'e_q05_gen_fp32', tokens_per_s: 3000 },
    { case: 'e_q05_gen_unpacked_fp32', tokens_per_s: 2500 },
    { case: 'r_q05_gen_fp32', tokens_per_s: 4000 },
    { case: 'e_q05_ttrl_fp32', ms_per_step: 2000, rollout_ms: 800, update_ms: 1200, max_abs_ppo_kl: 3.2e-8 },
    { case: 'e_q05_ttrl_unmerged_fp32', ms_per_step: 2600 },
    { case: 'r_q05_ttrl_fp32', ms_per_step: 2500, rollout_ms: 1500 },
    { case: 'e_q05_gemm_fp32', gemm_ms_per_step: 90, gemms: [{ count: 2, matmul_ms: 10 }, { count: 1, matmul_ms: 5 }] },
    { case: 'e_q15_ttrl_24g_mixed', ms_per_step: 5000, device_buffers_mb: 9000 },
  ].map((l) => JSON.stringify(l));
  const text = [...lines, '{"case":"e_b32k_train_fp32","ms_per'].join('\n');

  it('pairs each engine case with its reference and takes the ratio of times (tokens per second inverted)', () => {
    const results = readResults(text);
    expect(results.size).toBe(lines.length);
    const rows = tableRows(results);
    const ratio = (work: RegExp, precision: string) => rows.find((r) => work.test(r.work) && r.precision === precision)?.ratio;
    expect(ratio(/^LoRA r16 step/, 'fp32')).toBe(3);
    expect(ratio(/^LoRA r16 step/, 'mixed')).toBe(4.2);
    expect(ratio(/^generate B64 × 128/, 'fp32')).toBeCloseTo(4000 / 3000, 12);
    expect(ratio(/^TTRL step/, 'fp32')).toBe(0.8);
    // The unmerged step is held to TRL's step too.
    expect(ratio(/adapters not merged/, 'fp32')).toBe(2600 / 2500);
    // Unpacked generation against transformers' generate() as well.
    expect(ratio(/not packed/, 'fp32')).toBe(4000 / 2500);
    // A product time without its reference has no ratio.
    expect(ratio(/linear-layer products/, 'fp32')).toBeNull();
    // Acceptance 2 reads the better precision against its own reference: LoRA 3.00× in fp32 (met), generation 1.33× (not met), TTRL 0.80× (met).
    expect(acceptance(rows)).toEqual([
      'generation, q05 (tokens/s, as time): 1.33× of the reference\'s time (fp32); needs at most 1.00× — not met',
      'LoRA step, q05: 3.00× of the reference\'s time (fp32); needs at most 3.00× — met',
      'TTRL step, q05, against TRL: 0.80× of the reference\'s time (fp32); needs at most 1.00× — met',
    ]);
  });

  it("reads nvidia-smi's samples as the rise over the first, and writes the whole table from a folder", async () => {
    expect(smiPeakMb('1200\n1300\n9800\n4000\n')).toBe(8600);
    expect(smiPeakMb('NVIDIA-SMI has failed')).toBeNull();
    const fs = await import('node:fs');
    const os = await import('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-gpu-table-'));
    fs.writeFileSync(path.join(dir, 'results.jsonl'), text);
    fs.writeFileSync(path.join(dir, 'nvidia-smi-q15-mixed.txt'), '500\n8000\n7000\n');
    const table = render(dir);
    expect(table).toContain('| LoRA r16 step, q05, B8 T256 | fp32 | 450.0 ms | 150.0 ms | 3.00× |');
    expect(table).toContain("- the step's products (fp32) as MatMul instead of Gemm: 25.0 ms");
    expect(table).toContain('- Qwen2.5-1.5B-shaped LoRA TTRL step, 24 GB plan (mixed): 5,000.0 ms a step, the engine\'s buffers 9,000.0 MB, nvidia-smi\'s peak rise 7,500 MiB');
    expect(table).toContain('- Qwen2.5-1.5B-shaped LoRA TTRL step (fp32): not in the results');
    expect(table).toContain("- TTRL step (fp32): rollout 800.0 ms, update 1,200.0 ms; TRL's rollout 1,500.0 ms; largest |ppo_kl| 3.2e-8 (generation against training)");
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
