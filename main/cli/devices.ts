// `autodidact devices`: which devices the engine can run on here.
import { command } from './args.ts';
import { withEngine } from './engine.ts';
import { writeLine } from './jsonl.ts';

export const devicesCommand = command({
  name: 'devices',
  summary: 'List the devices the engine can run on (cpu, webgpu, cuda) and the one "auto" picks.',
  synopsis: '[--json] [--measure]',
  flags: {
    json: { type: 'boolean', description: 'print one JSON object instead of a table' },
    measure: { type: 'boolean', description: 'time one second of matrix products on each available device (GFLOP/s)' },
  },
  async run(values) {
    await withEngine(async (host, signal) => {
      const report = await host.call('devices', {}, { signal });
      const gflops: Record<string, number> = {};
      if (values.measure) {
        for (const d of report.devices.filter((x) => x.available)) {
          gflops[d.name] = (await host.call('selftest', { device: d.name, seconds: 1 }, { signal })).gflops;
        }
      }
      if (values.json) {
        await writeLine(JSON.stringify({ ...report, ...(values.measure ? { gflops } : {}) }));
        return;
      }
      for (const d of report.devices) {
        const speed = gflops[d.name] !== undefined ? `  ${gflops[d.name].toFixed(1)} GFLOP/s` : '';
        const adapter = d.adapter ? `  [${d.adapter}]` : '';
        await writeLine(`${d.name.padEnd(7)} ${d.available ? 'available' : `not available: ${d.reason}`}${adapter}${speed}`);
      }
      await writeLine(`auto    -> ${report.auto}`);
      await writeLine(`onnxruntime ${report.onnxruntime}, ${report.threads} threads, ${report.platform}`);
    });
    return 0;
  },
});
