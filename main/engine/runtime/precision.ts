// The run setting `precision`: fp32 everywhere, or mixed precision (frozen weights held in
// float16, float16 activations and matrix products, float32 master weights, moments and the
// numerically sensitive parts; see ARCHITECTURE.md, "Mixed precision"). Which devices can run
// it is devices.ts's halfPrecisionSupport. No onnxruntime here: the run settings import it.
import type { KeepHalf } from '../nn/safetensors.ts';

export const PRECISIONS = ['fp32', 'mixed'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** The float type matrix products and activations use under `precision`. */
export function computeDtype(precision: Precision): 'float32' | 'float16' {
  return precision === 'mixed' ? 'float16' : 'float32';
}

/**
 * Which half-precision checkpoint tensors a run holds on the host as float16 (loadModelFolder's
 * keepHalf), by what it `trains`: none in fp32. Under mixed precision every frozen weight is only
 * ever read as float16, so where the checkpoint is frozen (LoRA adapters, or inference) F16
 * tensors stay as stored and BF16 ones are converted once; under full fine-tuning ('weights')
 * the float32 master weights are made from the checkpoint, so F16 tensors (exact in float32)
 * stay float16 and BF16 ones are widened, keeping every stored value in the masters (float16
 * would round bfloat16's smallest values).
 */
export function hostHalf(precision: Precision, trains: 'weights' | 'adapters' | 'nothing'): KeepHalf {
  if (precision === 'fp32') return 'none';
  return trains === 'weights' ? 'f16' : 'f16+bf16';
}
