// Issue 16's table from what `bench/gpu/measure.sh` brought back: each row the engine beside its
// PyTorch reference (same case name, e_ → r_), as times per step and the ratio the issue's
// acceptance reads, fp32 and mixed precision; then the TTRL step with and without merged
// adapters, the matrix products alone, and the 1.5B-shaped step's memory.
//
//   npx tsx bench/gpu/table.ts DIR      (DIR: the results.jsonl and nvidia-smi-*.txt measure.sh wrote)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Result = Record<string, unknown> & { case: string };

/** One JSON line per result; lines that are not JSON (a cut-off write) are skipped. */
export function readResults(text: string): Map<string, Result> {
  const out = new Map<string, Result>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Result;
      if (typeof r.case === 'string') out.set(r.case, r);
    } catch {
      // a line cut off when the call ran out of time
    }
  }
  return out;
}

const num = (r: Result | undefined, key: string): number | null => (r && typeof r[key] === 'number' ? (r[key] as number) : null);
const fmt = (x: number | null, digits = 1) => (x === null ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ratioText = (x: number | null) => (x === null ? '—' : `${x.toFixed(2)}×`);

export interface Row {
  work: string;
  precision: 'fp32' | 'mixed';
  engine: number | null;
  reference: number | null;
  unit: 'ms' | 'tok/s';
  /** Engine time / reference time (for tokens per second, reference / engine). */
  ratio: number | null;
}

/** The engine's time over the reference's: below 1 the engine is faster. */
export function timeRatio(engine: number | null, reference: number | null, unit: Row['unit']): number | null {
  if (engine === null || reference === null || engine <= 0 || reference <= 0) return null;
  return unit === 'ms' ? engine / reference : reference / engine;
}

const ROWS: { work: string; name: string; key: string; unit: Row['unit'] }[] = [
  { work: 'full fine-tuning step, bench-256-32k, B32 T64', name: 'b32k_train', key: 'ms_per_step', unit: 'ms' },
  { work: 'generate B64 × 64 tokens, bench-256-32k', name: 'b32k_gen', key: 'tokens_per_s', unit: 'tok/s' },
  { work: 'LoRA r16 step, q05, B8 T256', name: 'q05_lora', key: 'ms_per_step', unit: 'ms' },
  { work: 'full fine-tuning step, q05, B8 T256', name: 'q05_full', key: 'ms_per_step', unit: 'ms' },
  { work: 'generate B64 × 128 tokens (prompt 64), q05', name: 'q05_gen', key: 'tokens_per_s', unit: 'tok/s' },
  { work: '… the same, q, k, v not packed into one product', name: 'q05_gen_unpacked', key: 'tokens_per_s', unit: 'tok/s' },
  { work: 'TTRL step 4 × 16 × 64, q05 LoRA r16 (TRL GRPOTrainer)', name: 'q05_ttrl', key: 'ms_per_step', unit: 'ms' },
  { work: '… the same, adapters not merged for generation', name: 'q05_ttrl_unmerged', key: 'ms_per_step', unit: 'ms' },
  { work: 'linear-layer products of the q05 step (Σ count · ms)', name: 'q05_gemm', key: 'gemm_ms_per_step', unit: 'ms' },
];

export function tableRows(results: Map<string, Result>): Row[] {
  const rows: Row[] = [];
  for (const precision of ['fp32', 'mixed'] as const) {
    for (const r of ROWS) {
      const engine = num(results.get(`e_${r.name}_${precision}`), r.key);
      // The unmerged TTRL step and unpacked generation have no reference of their own: PyTorch's is the same either way.
      const reference = num(results.get(`r_${r.name.replace(/_unmerged|_unpacked/, '')}_${precision}`), r.key);
      if (engine === null && reference === null) continue;
      rows.push({ work: r.work, precision, engine, reference, unit: r.unit, ratio: timeRatio(engine, reference, r.unit) });
    }
  }
  return rows;
}

/** The acceptance 2, in the faster of fp32 and mixed precision (each against its own reference). */
export function acceptance(rows: readonly Row[]): string[] {
  const best = (name: string) => {
    const found = rows.filter((r) => r.work === ROWS.find((x) => x.name === name)!.work && r.ratio !== null);
    return found.length ? found.reduce((a, b) => (b.ratio! < a.ratio! ? b : a)) : null;
  };
  const line = (what: string, row: Row | null, limit: number) =>
    row ? `${what}: ${ratioText(row.ratio)} of the reference's time (${row.precision}); needs at most ${limit.toFixed(2)}× — ${row.ratio! <= limit ? 'met' : 'not met'}` : `${what}: not measured`;
  return [
    line('generation, q05 (tokens/s, as time)', best('q05_gen'), 1),
    line('LoRA step, q05', best('q05_lora'), 3),
    line('TTRL step, q05, against TRL', best('q05_ttrl'), 1),
  ];
}

/** Peak minus first sample of nvidia-smi's memory.used (MiB), one number per line. */
export function smiPeakMb(text: string): number | null {
  const values = text.split('\n').map((l) => Number(l.trim())).filter((x) => Number.isFinite(x) && x >= 0);
  return values.length ? Math.max(...values) - values[0] : null;
}

export function render(dir: string): string {
  const results = readResults(fs.readFileSync(path.join(dir, 'results.jsonl'), 'utf8'));
  const rows = tableRows(results);
  const out = ['| work | precision | engine | PyTorch | engine time / PyTorch\'s |', '|---|---|---|---|---|'];
  for (const r of rows) out.push(`| ${r.work} | ${r.precision} | ${fmt(r.engine)} ${r.unit} | ${fmt(r.reference)} ${r.unit} | ${ratioText(r.ratio)} |`);
  out.push('', ...acceptance(rows).map((l) => `- ${l}`), '');
  for (const precision of ['fp32', 'mixed'] as const) {
    const ttrl = results.get(`e_q05_ttrl_${precision}`);
    const trl = results.get(`r_q05_ttrl_${precision}`);
    const kl = num(ttrl, 'max_abs_ppo_kl');
    if (ttrl) out.push(`- TTRL step (${precision}): rollout ${fmt(num(ttrl, 'rollout_ms'))} ms, update ${fmt(num(ttrl, 'update_ms'))} ms; TRL's rollout ${fmt(num(trl, 'rollout_ms'))} ms; largest |ppo_kl| ${kl === null ? '—' : kl.toExponential(1)} (generation against training)`);
    const gemm = results.get(`e_q05_gemm_${precision}`);
    const products = gemm && Array.isArray(gemm.gemms) ? (gemm.gemms as { count: number; matmul_ms?: number }[]) : [];
    if (products.length) out.push(`- the step's products (${precision}) as MatMul instead of Gemm: ${fmt(products.reduce((s, g) => s + g.count * (g.matmul_ms ?? 0), 0))} ms`);
    const q15 = results.get(`e_q15_ttrl_24g_${precision}`);
    const smiFile = path.join(dir, `nvidia-smi-q15-${precision}.txt`);
    const smi = fs.existsSync(smiFile) ? smiPeakMb(fs.readFileSync(smiFile, 'utf8')) : null;
    if (q15) out.push(`- Qwen2.5-1.5B-shaped LoRA TTRL step, 24 GB plan (${precision}): ${fmt(num(q15, 'ms_per_step'))} ms a step, the engine's buffers ${fmt(num(q15, 'device_buffers_mb'))} MB, nvidia-smi's peak rise ${fmt(smi, 0)} MiB`);
    else out.push(`- Qwen2.5-1.5B-shaped LoRA TTRL step (${precision}): not in the results`);
  }
  return out.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: npx tsx bench/gpu/table.ts DIR   (the folder measure.sh wrote: results.jsonl, nvidia-smi-*.txt)');
    process.exit(2);
  }
  console.log(render(dir));
}
