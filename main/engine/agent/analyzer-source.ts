// Where OPID's analyzer runs when it is not the policy (the loop's own generator): a frozen model
// folder the engine loads beside the policy, or an OpenAI-compatible chat endpoint. Either way an
// episode it cannot be asked about (a prompt past the model's context, an endpoint error) is an
// `AnalyzerRefused`: that episode gets no skill and the run goes on.
import { Generator } from '../generate/generator.ts';
import { loadModelFolder } from '../nn/hf-model.ts';
import type { Device } from '../runtime/devices.ts';
import { HostWeights } from '../runtime/weights.ts';
import type { AgentSettings } from '../rl/methods/agent.ts';
import { AnalyzerRefused, type ChatComplete } from './analyzer.ts';
import { ChatEndpoint, EndpointError } from './endpoint.ts';

export interface AnalyzerSource {
  complete: ChatComplete;
  release(): Promise<void>;
}

/** The analyzer the settings name, or null for the policy itself; `modelDir` resolves opidAnalyzerModel to a folder. */
export async function analyzerSource(s: AgentSettings, device: Device, modelDir: (spec: string) => string, signal?: AbortSignal): Promise<AnalyzerSource | null> {
  if (s.opidAnalyzer === 'policy' || s.agentSignal === 'outcome') return null;
  if (s.opidAnalyzer === 'endpoint') {
    const endpoint = new ChatEndpoint({ url: s.opidAnalyzerUrl, model: s.opidAnalyzerName, ...(s.opidAnalyzerKeyEnv ? { keyEnv: s.opidAnalyzerKeyEnv } : {}) });
    return {
      complete: async (messages) => {
        try {
          return (await endpoint.complete(messages, { temperature: 0, maxTokens: s.opidAnalyzerMaxTokens, signal })).text;
        } catch (e) {
          if (e instanceof EndpointError) throw new AnalyzerRefused(e.message);
          throw e;
        }
      },
      release: async () => {},
    };
  }
  const dir = modelDir(s.opidAnalyzerModel);
  const m = await loadModelFolder(dir);
  const tok = m.tokenizer;
  if (!tok) throw new Error(`opidAnalyzerModel: ${dir} has no tokenizer.json; the analyzer needs its tokenizer`);
  const ctx = Math.min(m.config.maxPositionEmbeddings, m.config.slidingWindow ?? Infinity);
  const generator = await Generator.create({ config: m.config, weights: new HostWeights(m.weights), device, maxLength: ctx });
  return {
    complete: async (messages) => {
      const prompt = tok.encode(tok.applyChatTemplate([...messages], { addGenerationPrompt: true }), { addSpecialTokens: false });
      if (prompt.length + s.opidAnalyzerMaxTokens > ctx) {
        throw new AnalyzerRefused(`the analysis prompt has ${prompt.length} tokens; with opidAnalyzerMaxTokens ${s.opidAnalyzerMaxTokens} it does not fit ${dir}'s ${ctx} positions`);
      }
      const r = await generator.generate({ promptIds: [prompt], maxNewTokens: s.opidAnalyzerMaxTokens, temperature: 0, tokenizer: tok, signal });
      return r.samples[0].text ?? '';
    },
    release: () => generator.release(),
  };
}
