// Where OPID's analyzer runs when it is not the policy: a frozen model folder the engine loads
// (here tiny-chars), whose prompt must fit its context, or none for the policy and outcome-only runs.
import { describe, expect, it } from 'vitest';
import { AnalyzerRefused } from '../../../main/engine/agent/analyzer.ts';
import { analyzerSource } from '../../../main/engine/agent/analyzer-source.ts';
import { resolveModelPath } from '../../../main/engine/model-paths.ts';
import { agent } from '../../../main/engine/rl/methods/agent.ts';
import { testDevice } from '../../helpers/device.ts';

const settings = (extra: Record<string, unknown>) => agent.settings.parse(extra);

describe("OPID's analyzer source", () => {
  it('is the policy itself (null) unless a model or an endpoint is named, and never for outcome-only runs', async () => {
    const device = await testDevice();
    const never = () => {
      throw new Error('no model folder should be resolved');
    };
    expect(await analyzerSource(settings({}), device, never)).toBeNull();
    expect(await analyzerSource(settings({ agentSignal: 'outcome', opidAnalyzer: 'model', opidAnalyzerModel: 'tiny-chars' }), device, never)).toBeNull();
  });

  it('a frozen model answers a prompt that fits, and refuses one that does not, naming its length and the model', async () => {
    const source = (await analyzerSource(settings({ opidAnalyzer: 'model', opidAnalyzerModel: 'tiny-chars', opidAnalyzerMaxTokens: 16 }), await testDevice(), resolveModelPath))!;
    try {
      expect(typeof (await source.complete([{ role: 'user', content: 'Analyse: go to cabinet 1.' }]))).toBe('string');
      const long = [{ role: 'user' as const, content: 'x'.repeat(2000) }];
      await expect(source.complete(long)).rejects.toThrow(AnalyzerRefused);
      await expect(source.complete(long)).rejects.toThrow(/the analysis prompt has \d+ tokens; with opidAnalyzerMaxTokens 16 it does not fit .*tiny-chars's 1024 positions/);
    } finally {
      await source.release();
    }
  }, 60_000);
});
