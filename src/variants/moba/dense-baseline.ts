import type { CostBreakdown } from "../../cost/breakdown.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { priceDense } from "../dense/cost.js"
import type { KernelGeneration } from "../dense/generations.js"
import { describeTiling, planDense, type DensePlan } from "../dense/plan.js"
import { DenseSchedule } from "../dense/schedule.js"

/**
 * Maximum key length at which the dense planner searches a baseline in full.
 * Its search prices every legal tiling over one CTA class per query tile. On
 * one core of a 2-core development VM that took about a second at 128k tokens,
 * 8 to 18 seconds at 1M, and at 10M it is estimated at minutes.
 */
export const denseSearchLimit = 1 << 17

export interface DenseBaseline {
  readonly cost: CostBreakdown
  readonly tiling: string
  /** "searched": planned by the dense planner; "tiling-reused": see denseBaseline. */
  readonly method: "searched" | "tiling-reused"
}

const memo = new Map<string, DenseBaseline>()
const memoLimit = 64

/**
 * Prices dense attention of the same shape, phase and kernel on the same
 * device, through the dense variant's planner and cost model. Above
 * denseSearchLimit keys (prefill and training), the tiling the planner picks
 * at that limit (same query/key ratio) is priced over the full shape with the
 * dense schedule. For Llama-3.1-8B-like causal prefill (32/8 heads, head
 * dim 128) at 1M tokens, that tiling prices within 0.08 % of a full search on
 * h100-sxm, h800-sxm and h20, and is the same tiling on b200 and
 * a100-sxm-80g. Results are memoized per request and device.
 */
export function denseBaseline(shape: AttentionShape, phase: Phase, kernel: KernelGeneration | undefined, device: DeviceRates): DenseBaseline {
  const key = JSON.stringify({ shape, phase, kernel, device })
  const cached = memo.get(key)
  if (cached) return cached

  const baseline = phase === "decode" || shape.seqLenKV <= denseSearchLimit ? searched(shape, phase, kernel, device) : reused(shape, phase, kernel, device)
  if (memo.size >= memoLimit) memo.delete(memo.keys().next().value!)
  memo.set(key, baseline)
  return baseline
}

function searched(shape: AttentionShape, phase: Phase, kernel: KernelGeneration | undefined, device: DeviceRates): DenseBaseline {
  const plan = planDense({ shape, phase, kernel }, device)
  return { cost: plan.cost, tiling: describe(plan), method: "searched" }
}

function reused(shape: AttentionShape, phase: Phase, kernel: KernelGeneration | undefined, device: DeviceRates): DenseBaseline {
  const ratio = shape.seqLenQ / shape.seqLenKV
  const proxyShape = { ...shape, seqLenKV: denseSearchLimit, seqLenQ: Math.max(1, Math.round(denseSearchLimit * ratio)) }
  const proxy = planDense({ shape: proxyShape, phase, kernel }, device)
  const schedule = new DenseSchedule({ shape, phase, tiling: proxy.tiling, backwardTiling: proxy.backwardTiling })
  return { cost: priceDense(schedule, device), tiling: describe(proxy), method: "tiling-reused" }
}

const describe = (plan: DensePlan): string => describeTiling(plan.tiling) + (plan.backwardTiling ? `; backward ${describeTiling(plan.backwardTiling)}` : "")
