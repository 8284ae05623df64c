// The run view's charts come from the metric table: the critic's charts (advantage gae) are drawn
// for actor–critic runs only, from the run's settings, before any step is logged.
import { describe, expect, it } from 'vitest';
import type { MethodCatalog } from '../../../contract/index.ts';
import { CHARTS, RUN_METRICS } from '../../../main/engine/rl/metrics.ts';
import { runCharts } from '../../../renderer/src/lib/metrics.ts';

// As runs.methods serves them (main/api/handlers/runs.ts).
const catalog: MethodCatalog = {
  methods: [],
  metrics: RUN_METRICS.map((m) => ({ key: m.key, label: m.label, description: m.description, chart: m.chart, unit: m.unit ?? false, groundTruth: m.groundTruth ?? false, method: null })),
  charts: CHARTS.map((c) => ({ id: c.id, title: c.title, hint: c.hint, unit: c.unit ?? false, ...(c.when && { when: c.when }) })),
};

describe('runCharts', () => {
  it('draws the critic’s value, loss and explained-variance charts for advantage gae only', () => {
    const critic = ['critic-values', 'critic-loss', 'critic-explained'];
    const grpo = runCharts(catalog, 'ttrl', { advantage: 'grpo' }).map((c) => c.id);
    expect(grpo).toContain('reward');
    for (const id of critic) expect(grpo).not.toContain(id);
    const gae = runCharts(catalog, 'ttrl', { advantage: 'gae' });
    expect(gae.map((c) => c.id)).toEqual([...grpo, ...critic]);
    const values = gae.find((c) => c.id === 'critic-values')!;
    expect(['critic/values/mean', 'critic/returns/mean', 'critic/vpred_mean'].every(values.match)).toBe(true);
    expect(values.order).toEqual(['critic/values/mean', 'critic/returns/mean', 'critic/vpred_mean']);
    expect(gae.find((c) => c.id === 'critic-loss')!.match('critic/vf_loss')).toBe(true);
    expect(gae.find((c) => c.id === 'critic-explained')!.match('critic/vf_explained_var')).toBe(true);
    // vf_clipfrac is offered under "More metrics" (no chart of its own), as the clip ratio is.
    expect(gae.some((c) => c.match('critic/vf_clipfrac'))).toBe(false);
  });
});
