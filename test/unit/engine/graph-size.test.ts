// How many nodes the engine's graphs have: on a GPU every node is a dispatch (~95 µs of host
// time each through WebGPU on an H200), so the builder keeps views out of the graph. Counted on
// the graphs as written for WebGPU, built without any session.
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { emitModel } from '../../../main/engine/graph/emit.ts';
import type { Graph } from '../../../main/engine/graph/graph.ts';
import { loweringsFor } from '../../../main/engine/graph/lowering.ts';
import { LINEAR_MODULES } from '../../../main/engine/nn/config.ts';
import { ADAMW_DEFAULTS } from '../../../main/engine/optim/adamw.ts';
import { ParameterStore } from '../../../main/engine/runtime/parameter-store.ts';
import { buildTrainStepGraph } from '../../../main/engine/runtime/trainer.ts';
import { randomWeights, tinyLlama } from '../../helpers/tiny-llama.ts';

type OnnxNode = onnxProto.onnx.INodeProto;

function written(graph: Graph): { nodes: OnnxNode[]; producer: Map<string, OnnxNode>; readers: Map<string, OnnxNode[]> } {
  const nodes = onnxProto.onnx.ModelProto.decode(emitModel(graph, loweringsFor('webgpu'))).graph?.node ?? [];
  const producer = new Map<string, OnnxNode>();
  const readers = new Map<string, OnnxNode[]>();
  for (const n of nodes) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  return { nodes, producer, readers };
}

describe('graph size', () => {
  it('a LoRA training step has no reshape chain and no reshape around its linear layers', async () => {
    const config = tinyLlama({ vocabSize: 37, numLayers: 2 });
    const lora = { rank: 2, alpha: 4, targetModules: [...LINEAR_MODULES] };
    const store = await ParameterStore.create({ config, weights: randomWeights(config), device: { name: 'cpu', keepsStateOnDevice: false }, lora });
    try {
      const g = buildTrainStepGraph(store, { batch: { size: 2, seqLen: 6 }, loss: { kind: 'sft' }, optimizer: ADAMW_DEFAULTS });
      const { nodes, producer, readers } = written(g);
      const reshapes = nodes.filter((n) => n.opType === 'Reshape');
      const from = (n: OnnxNode) => producer.get(n.input![0])?.opType ?? 'input';
      const to = (n: OnnxNode) => (readers.get(n.output![0]) ?? []).map((r) => r.opType);
      // One is left: the token log-prob primitive views its picks inside (untaped), and the loss's
      // view of its output must differentiate through the primitive, so it cannot skip that view.
      expect(reshapes.filter((r) => from(r) === 'Reshape').length, 'reshapes of a reshape').toBe(1);
      // The residual stream is [B·T, H] rows: a linear layer's output is used as it is (only a
      // weight's gradient is flattened, for the optimizer's Concat), and so is a norm's.
      expect(reshapes.filter((r) => from(r) === 'Gemm' && to(r).some((t) => t !== 'Concat')).length, 'reshaped products').toBe(0);
      expect(reshapes.filter((r) => from(r) === 'SimplifiedLayerNormalization').length, 'reshaped norms').toBe(0);
      // AdamW reads the flat parameter buffer: no weight is flattened again for it.
      expect(reshapes.filter((r) => from(r) === 'input' && to(r).includes('Concat')).length, 'flattened weights').toBe(0);
      // Measured: 769 nodes, 323 of them Reshapes, before the rows and the chain collapse; 535 and 117
      // after, 483 and 81 with AdamW reading the flat buffer and the fused nodes.
      console.log(`LoRA step, 2 layers: ${nodes.length} nodes, ${reshapes.length} Reshape`);
      expect(reshapes.length).toBeLessThan(90);
    } finally {
      await store.release();
    }
  });
});
