// The run setting `precision`: fp32 everywhere, or mixed precision (frozen weights held in
// float16, float16 activations and matrix products, float32 master weights, moments and the
// numerically sensitive parts; see ARCHITECTURE.md, "Mixed precision"). Which devices can run
// it is devices.ts's halfPrecisionSupport. No onnxruntime here: the run settings import it.

export const PRECISIONS = ['fp32', 'mixed'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** The float type matrix products and activations use under `precision`. */
export function computeDtype(precision: Precision): 'float32' | 'float16' {
  return precision === 'mixed' ? 'float16' : 'float32';
}
