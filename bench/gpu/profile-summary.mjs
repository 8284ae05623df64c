// Summarise onnxruntime profile files: per file (session) node runs by provider, and the op types taking the most time.
import fs from 'node:fs';
import path from 'node:path';
const dir = process.argv[2];
const out = [];
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
  const ev = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  const byProvider = {}, byOp = {}, runs = [];
  let nodes = 0, total = 0;
  for (const e of ev) {
    if (e.cat === 'Session' && e.name === 'model_run') runs.push(e.dur);
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    nodes++; total += e.dur;
    byProvider[e.args.provider] = (byProvider[e.args.provider] ?? 0) + 1;
    const k = e.args.op_name;
    byOp[k] ??= { n: 0, us: 0 }; byOp[k].n++; byOp[k].us += e.dur;
  }
  if (!nodes) continue;
  const top = Object.entries(byOp).sort((a, b) => b[1].us - a[1].us).slice(0, 15).map(([op, v]) => ({ op, n: v.n, ms: +(v.us / 1000).toFixed(2) }));
  out.push({ file: f, model_runs: runs.length, model_run_ms: runs.map((d) => +(d / 1000).toFixed(1)), node_runs: nodes, kernel_ms: +(total / 1000).toFixed(1), byProvider, top });
}
console.log(JSON.stringify(out, null, 1));
