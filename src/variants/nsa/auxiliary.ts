import type { KernelCost } from "../../cost/breakdown.js"
import type { WorkCounts } from "../../cost/counts.js"
import { gemmKernel } from "../../cost/gemm.js"
import { priceKernel, type KernelSpec } from "../../cost/kernel-time.js"
import { streamingKernel } from "../../cost/streaming.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { bytesPerElement } from "../dense/schedule.js"
import { compressedTokens, type NsaGeometry } from "./geometry.js"
import type { NsaOptions } from "./options.js"
import { evenKernel, scaleKernelCost } from "./pricing.js"

/**
 * The assumed compression MLP φ, per tensor: the l rows of a block (with an
 * intra-block position encoding added) flattened to l·dk, a hidden layer of
 * `hidden` units with an elementwise activation, and an output of dk (dv for
 * values). One φ for keys and one for values per layer, shared by its KV heads.
 */
export interface CompressionMlp {
  readonly keyHidden: number
  readonly valueHidden: number
  /** Multiply-add FLOPs (2 per multiply-add) per compressed token of one KV head, keys and values. */
  readonly flopsPerToken: number
  /** Weight elements of both MLPs. */
  readonly weights: number
}

export function compressionMlp(shape: AttentionShape, g: NsaGeometry, options: NsaOptions): CompressionMlp {
  const keyHidden = options.compressHidden ?? shape.headDim
  const valueHidden = options.compressHidden ?? shape.headDimV
  const keyWeights = g.compressBlock * shape.headDim * keyHidden + keyHidden * shape.headDim
  const valueWeights = g.compressBlock * shape.headDimV * valueHidden + valueHidden * shape.headDimV
  return { keyHidden, valueHidden, flopsPerToken: 2 * (keyWeights + valueWeights), weights: keyWeights + valueWeights }
}

/** Builds a matrix-product kernel (the cost/gemm model) with elementwise vector work added. */
function gemmWithVector(name: string, flops: number, bytes: number, vectorFlops: number, device: DeviceRates): KernelSpec {
  const spec = gemmKernel(name, flops, bytes, device)
  const ctas = spec.classes.reduce((sum, c) => sum + c.count, 0)
  return { ...spec, classes: spec.classes.map((c) => ({ ...c, counts: { ...c.counts, vectorFlops: vectorFlops / ctas } })) }
}

/**
 * Prices the compression kernels. Prefill and train compress every complete block:
 * raw K/V read once from HBM (overlapping blocks re-read from L2), weights,
 * compressed K/V written. Decode produces one new compressed token per KV
 * head once every d tokens, so that kernel (dominated by reading the weights)
 * is priced for one step in which it runs and amortized over d steps.
 * Training adds the backward: dX and dW products (twice the forward FLOPs)
 * reading the inputs and the compressed gradients again, with the
 * overlapping blocks' input gradients summed into FP32.
 */
export function priceCompression(shape: AttentionShape, g: NsaGeometry, options: NsaOptions, phase: Phase, device: DeviceRates): KernelCost[] {
  const s = bytesPerElement(shape)
  const mlp = compressionMlp(shape, g, options)
  const heads = shape.batch * shape.kvHeads
  const rowBytes = (shape.headDim + shape.headDimV) * s
  const activation = 2 * (mlp.keyHidden + mlp.valueHidden)

  if (phase === "decode") {
    const bytes = mlp.weights * s + heads * (g.compressBlock * rowBytes + rowBytes)
    const step = priceKernel(gemmWithVector("compress-mlp", heads * mlp.flopsPerToken, bytes, heads * activation, device), device)
    return [scaleKernelCost(step, 1 / g.compressStride)]
  }

  const tokens = heads * compressedTokens(g, shape.seqLenKV)
  const rawBytes = heads * shape.seqLenKV * rowBytes
  const forward = priceKernel(gemmWithVector("compress-mlp", tokens * mlp.flopsPerToken, rawBytes + mlp.weights * s + tokens * rowBytes, tokens * activation, device), device)
  if (phase !== "train") return [forward]

  const gradientBytes = rawBytes + tokens * rowBytes + heads * shape.seqLenKV * (shape.headDim + shape.headDimV) * 4 * 2 + mlp.weights * 4
  const backward = priceKernel(gemmWithVector("compress-mlp-backward", 2 * tokens * mlp.flopsPerToken, gradientBytes, 2 * tokens * activation, device), device)
  return [forward, backward]
}

/** Rows of the final combine per CTA: one (position, head) row per warp of a 4-warp CTA. */
const rowsPerCombineCta = 4

/** A branch output as the final combine reads it: normalized (16-bit) or as split partials (FP32 output and log-sum-exp). */
export interface BranchOutput {
  readonly splits: number
}

/**
 * Prices the final kernel: the per-head gate MLP on the query (dk → gateHidden → 3,
 * sigmoid), each branch's split partials merged where it was split (this
 * fuses the split-KV combine of the selected and window branches), and
 * o = g_cmp·o_cmp + g_slc·o_slc + g_win·o_win written once.
 */
export function priceCombineGate(shape: AttentionShape, options: NsaOptions, outputs: ReadonlyArray<BranchOutput>, phase: Phase, device: DeviceRates): KernelCost {
  const s = bytesPerElement(shape)
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const dk = shape.headDim
  const dv = shape.headDimV
  const hidden = options.gateHidden
  let readBytes = rows * dk * s + (dk * hidden + hidden * 3) * s
  let vectorFlops = rows * (2 * hidden + 3 * 2 * dv + 3 * 4)
  let expOps = rows * 3
  for (const output of outputs) {
    if (output.splits > 1) {
      readBytes += output.splits * rows * (dv + 1) * 4
      vectorFlops += output.splits * rows * (dv + 2) * 2
      expOps += output.splits * rows
    } else {
      readBytes += rows * dv * s
    }
  }
  // Training keeps the gate values for the backward pass.
  const writeBytes = rows * dv * s + (phase === "train" ? rows * 3 * 4 : 0)
  const flops = rows * 2 * (dk * hidden + hidden * 3)
  const total: WorkCounts = {
    tensorFlops: flops,
    usefulFlops: flops,
    expOps,
    vectorFlops,
    bytes: { hbm: readBytes + writeBytes, l2: readBytes + writeBytes, smem: 0 }
  }
  return priceKernel(evenKernel("combine-gate", total, Math.min(Math.ceil(rows / rowsPerCombineCta), device.sms * 4), 4, device), device)
}

/**
 * Prices the training-only helper kernels around the branches. The gate
 * backward splits dO into the three branches' dO scaled by their gates and
 * runs the gate MLP's backward. The compression branch needs a preprocess and
 * a reduction of its dK/dV over each GQA group. A last kernel sums the
 * branches' dQ into the query gradient.
 */
export function priceTrainingHelpers(shape: AttentionShape, g: NsaGeometry, options: NsaOptions, device: DeviceRates): KernelCost[] {
  const s = bytesPerElement(shape)
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const dk = shape.headDim
  const dv = shape.headDimV
  const hidden = options.gateHidden
  const tokens = compressedTokens(g, shape.seqLenKV)

  const gateFlops = 2 * rows * 2 * (dk * hidden + hidden * 3)
  const gateBytes = rows * (dk * s + 4 * dv * s + 12) + rows * (3 * dv * s + dk * 4)
  const gate = priceKernel(gemmWithVector("gate-backward", gateFlops, gateBytes, rows * (3 * dv * 2 + 4 * hidden), device), device)

  const preprocess = priceKernel(streamingKernel("compressed-backward-preprocess", rows * (2 * dv * s + 4 + dk * 4), rows * dv * 2, device), device)
  const group = shape.heads / shape.kvHeads
  const reduceBytes = group > 1 ? shape.batch * tokens * (shape.heads + shape.kvHeads) * (dk + dv) * s : 0
  const convert = priceKernel(streamingKernel("compressed-backward-convert", reduceBytes, shape.batch * tokens * shape.heads * (dk + dv), device), device)

  // Sum the compressed (FP32), selected (FP32), window (16-bit) and gate (FP32) dQ into the 16-bit query gradient.
  const dq = priceKernel(streamingKernel("backward-dq-sum", rows * dk * (3 * 4 + 2 * s), rows * dk * 4 * 2, device), device)
  return [gate, preprocess, convert, dq]
}
