// The graph builder: symbolic tensors with static shapes, recorded ops, and a tape for autodiff.
//
// Every op appends ONNX nodes to the graph and, when it is differentiable, one tape entry that
// names the rule in `autodiff.ts` that knows its vector-Jacobian product. Composite ops (RMSNorm,
// attention, ...) are built from primitives, so the tape only ever holds primitives.
import { type DType, encodeValues } from './dtype.ts';

export type Shape = readonly number[];

/** One ONNX attribute value, tagged with its ONNX kind. */
export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: readonly number[] }
  | { floats: readonly number[] };

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs: Record<string, Attr>;
  domain?: string;
  /**
   * Set by a composite op on its last node: one node computing the same output from the
   * composite's inputs (RMSNorm's six nodes are one SimplifiedLayerNormalization). A lowering
   * may write it instead where a provider runs it but does not fuse the composite itself; the
   * composite's other nodes are then pruned. `outputs`, when given, are the composite's values
   * the node writes in its own output order ('' for an optional output not wanted), the last
   * node's among them, where it also writes values of the composite's earlier nodes (a residual
   * sum and its norm); it then takes the place of the first of those nodes.
   */
  equivalent?: { opType: string; inputs: readonly string[]; attrs: Record<string, Attr>; domain?: string; outputs?: readonly string[] };
}

/** A tape entry: one differentiable primitive, with what its gradient rule needs. */
export interface TapeEntry {
  op: string;
  inputs: readonly Sym[];
  outputs: readonly Sym[];
  /** Op parameters the rule needs (axes, perm, ...), in plain JS values. */
  params: Record<string, unknown>;
}

/** A symbolic tensor: a named value in one graph with a static shape and an element type. */
export class Sym {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly shape: Shape,
    readonly dtype: DType,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  toString(): string {
    return `${this.name}:${this.dtype}[${this.shape.join(',')}]`;
  }
}

export interface Initializer {
  name: string;
  dtype: DType;
  shape: Shape;
  raw: Uint8Array;
}

export class Graph {
  readonly nodes: NodeSpec[] = [];
  readonly tape: TapeEntry[] = [];
  readonly inputs: Sym[] = [];
  readonly outputs: { name: string; sym: Sym }[] = [];
  readonly initializers: Initializer[] = [];
  /** The element type of every value (inputs, constants, node outputs) by name. */
  readonly dtypes = new Map<string, DType>();
  /** Every value's shape by name (what a pass over the written nodes may check, see gemm-fusion.ts). */
  readonly shapes = new Map<string, Shape>();
  private readonly constantCache = new Map<string, Sym>();
  private readonly usedNames = new Set<string>();
  private counter = 0;
  /** When false, ops are emitted but not taped (forward-only graphs, and backward graphs). */
  recording = true;

  constructor(readonly name = 'autodidact') {}

  /** A fresh value name, unique in this graph. */
  fresh(hint: string): string {
    let name = `${hint}_${this.counter++}`;
    while (this.usedNames.has(name)) name = `${hint}_${this.counter++}`;
    this.usedNames.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.usedNames.has(name)) throw new Error(`graph ${this.name}: the name "${name}" is already used`);
    this.usedNames.add(name);
    return name;
  }

  input(name: string, shape: Shape, dtype: DType = 'float32'): Sym {
    assertShape(shape, `input ${name}`);
    const sym = new Sym(this, this.claim(name), [...shape], dtype);
    this.inputs.push(sym);
    this.dtypes.set(sym.name, dtype);
    this.shapes.set(sym.name, sym.shape);
    return sym;
  }

  /** A constant tensor stored in the model; identical constants are stored once. */
  constant(values: ArrayLike<number> | ArrayLike<bigint>, shape: Shape, dtype: DType): Sym {
    const size = shape.reduce((a, b) => a * b, 1);
    if (values.length !== size) {
      throw new Error(`constant of shape [${shape}] needs ${size} values, got ${values.length}`);
    }
    const raw = encodeValues(values, dtype);
    const key = `${dtype}|${shape.join(',')}|${Buffer.from(raw).toString('base64')}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const sym = new Sym(this, this.fresh('const'), [...shape], dtype);
    this.dtypes.set(sym.name, dtype);
    this.shapes.set(sym.name, sym.shape);
    this.initializers.push({ name: sym.name, dtype, shape: [...shape], raw });
    this.constantCache.set(key, sym);
    return sym;
  }

  scalar(value: number, dtype: DType): Sym {
    return this.constant([value], [], dtype);
  }

  /** A 1-D int64 constant: shapes, axes, starts and ends of shape-manipulating ONNX ops. */
  int64s(values: readonly number[]): Sym {
    return this.constant(values.map((v) => BigInt(v)), [values.length], 'int64');
  }

  /**
   * Append one ONNX node. `outputs` gives the shape and dtype of each result, which the
   * caller (an op) has inferred; the builder never guesses shapes.
   */
  node(
    opType: string,
    inputs: readonly (Sym | null)[],
    outputs: readonly { shape: Shape; dtype: DType }[],
    attrs: Record<string, Attr> = {},
    domain?: string,
  ): Sym[] {
    for (const inp of inputs) {
      if (inp && inp.graph !== this) throw new Error(`${opType}: input ${inp.name} belongs to another graph`);
    }
    const outs = outputs.map(
      (o) => new Sym(this, this.fresh(opType.toLowerCase()), [...o.shape], o.dtype),
    );
    for (const o of outs) {
      this.dtypes.set(o.name, o.dtype);
      this.shapes.set(o.name, o.shape);
    }
    this.nodes.push({
      opType,
      inputs: inputs.map((s) => (s ? s.name : '')),
      outputs: outs.map((s) => s.name),
      attrs,
      domain,
    });
    return outs;
  }

  /** Record a differentiable primitive on the tape. */
  record(op: string, inputs: readonly Sym[], outputs: readonly Sym[], params: Record<string, unknown> = {}): void {
    if (this.recording) this.tape.push({ op, inputs, outputs, params });
  }

  /** Mark `sym` as a graph output called `name`. */
  output(name: string, sym: Sym): void {
    if (sym.graph !== this) throw new Error(`output ${name}: value belongs to another graph`);
    const out = new Sym(this, this.claim(name), sym.shape, sym.dtype);
    this.dtypes.set(out.name, sym.dtype);
    this.shapes.set(out.name, sym.shape);
    this.nodes.push({ opType: 'Identity', inputs: [sym.name], outputs: [out.name], attrs: {} });
    this.outputs.push({ name, sym: out });
  }

  /** Run `fn` with taping switched off (for graphs that are never differentiated). */
  untaped<T>(fn: () => T): T {
    const saved = this.recording;
    this.recording = false;
    try {
      return fn();
    } finally {
      this.recording = saved;
    }
  }
}

export function assertShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: bad dimension ${d} in shape [${shape}]`);
  }
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
