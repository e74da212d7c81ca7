import { Data } from "effect"
import type { CostBreakdown } from "../../cost/breakdown.js"
import type { WaveModel } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import { visiblePairs } from "../../workload/mask.js"
import { keyRowElements, type AttentionShape, type Phase } from "../../workload/shape.js"
import { priceDense } from "./cost.js"
import { generations, type KernelGeneration } from "./generations.js"
import { DenseSchedule } from "./schedule.js"
import { candidateShapes, makeTiling, residency, type DenseTiling, type TileShape } from "./tiling.js"

export interface DenseRequest {
  readonly shape: AttentionShape
  readonly phase: Phase
  /** Kernel generation; undefined tries every one the device supports. */
  readonly kernel?: KernelGeneration | undefined
  /** Replaces the generation's fitted softmax overlap: for fitting and for what-if questions. */
  readonly softmaxOverlap?: number | undefined
  /** Replaces the generation's fitted backward MMA efficiency, likewise. */
  readonly backwardMmaEfficiency?: number | undefined
  /**
   * True when a kernel of the caller merges the split-KV partials instead of
   * the combine kernel. The search then compares tilings without the combine
   * kernel and keeps the best tiling of every split count in
   * DensePlan.forwardBySplits, because the caller's merge cost depends on the
   * split count. `cost` still lists the combine kernel.
   */
  readonly fusedCombine?: boolean | undefined
}

/** A tiling the planner did not keep, and why. */
export interface Rejection {
  readonly tiling: string
  readonly reason: string
}

export interface DensePlan {
  readonly request: DenseRequest
  readonly tiling: DenseTiling
  readonly backwardTiling?: DenseTiling | undefined
  readonly schedule: DenseSchedule
  readonly cost: CostBreakdown
  /** Tilings that cannot run on the device, with the reason. */
  readonly rejected: ReadonlyArray<Rejection>
  /** Legal tilings ranked; those whose lower bound could not win were not priced exactly. */
  readonly considered: number
  /** With `fusedCombine`: the forward tiling kept for each split count the search tried. */
  readonly forwardBySplits?: ReadonlyMap<number, DenseTiling> | undefined
}

/** No legal tiling exists, or the requested kernel cannot run on the device. */
export class PlanError extends Data.TaggedError("PlanError")<{
  readonly variant: string
  readonly device: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot plan ${this.variant} attention on ${this.device}: ${this.reason}`
  }
}

export const describeTiling = (t: DenseTiling): string =>
  `${t.kernel} ${t.blockM}×${t.blockN} stages=${t.stages} warps=${t.warps}` +
  (t.splits > 1 ? ` splits=${t.splits}` : "") +
  (t.packGqa ? " packed-gqa" : "")

/**
 * Enumerate legal tilings (tile sizes, pipeline stages, warps, split-KV, GQA
 * packing) under the device's shared-memory and register limits, price each and
 * keep the fastest. Training plans its forward and backward kernels separately.
 */
export function planDense(request: DenseRequest, device: DeviceRates): DensePlan {
  const key = JSON.stringify([request, device])
  const planned = planMemo.get(key)
  if (planned) return planned
  const plan = searchPlan(request, device)
  if (planMemo.size >= planMemoLimit) planMemo.delete(planMemo.keys().next().value!)
  planMemo.set(key, plan)
  return plan
}

/**
 * Plans by request and device rates. Planning is a pure function and a search
 * at 1M tokens takes seconds, so a variant that plans a dense part or a dense
 * baseline of a shape that another row already planned reuses the result.
 */
const planMemo = new Map<string, DensePlan>()
const planMemoLimit = 64

/** Forget remembered plans, so that a benchmark times the search itself. */
export function clearDensePlanMemo(): void {
  planMemo.clear()
}

function searchPlan(request: DenseRequest, device: DeviceRates): DensePlan {
  const kernels = kernelsFor(request, device)
  const rejected: Rejection[] = []
  const forward = searchForward(request, device, kernels, rejected)
  const backward = request.phase === "train" ? searchBackward(request, device, forward.best.kernel, rejected) : undefined

  const schedule = new DenseSchedule({ shape: request.shape, phase: request.phase, tiling: forward.best, backwardTiling: backward?.best })
  return {
    request,
    tiling: forward.best,
    backwardTiling: backward?.best,
    schedule,
    cost: priceDense(schedule, device),
    rejected,
    considered: forward.considered + (backward?.considered ?? 0),
    forwardBySplits: forward.bySplits
  }
}

function kernelsFor(request: DenseRequest, device: DeviceRates): ReadonlyArray<KernelGeneration> {
  if (request.kernel === "fa3" && !device.asyncMma) {
    throw new PlanError({
      variant: "dense",
      device: device.profileId,
      reason: "kernel fa3 needs warpgroup-level asynchronous MMA (Hopper or later); use --kernel fa2"
    })
  }
  if (request.kernel) return [request.kernel]
  return device.asyncMma ? ["fa2", "fa3"] : ["fa2"]
}

function baseTiling(request: DenseRequest, kernel: KernelGeneration, candidate: TileShape): DenseTiling {
  return makeTiling(kernel, candidate, { ctasPerSm: 0, splits: 1, packGqa: false }, request)
}

/**
 * Relative time within which a tiling counts as equally fast as the fastest
 * one. Among those, the one that keeps the memory levels least busy (HBM + L2
 * + shared-memory time) wins. The tolerance is 0, so planners keep the fastest
 * tiling. A larger one would let a faster device pick a lighter but slower
 * tiling, and raising a rate must never make an estimate slower.
 */
export const tieTolerance = 0

interface Candidate {
  readonly tiling: DenseTiling
  readonly seconds: number
  readonly memorySeconds: number
}

/**
 * Picks the tiling to keep: the least memory time among those within
 * tieTolerance of the fastest, the first one on equal memory time. Comparing
 * with the fastest rather than the best so far keeps a chain of near-ties from
 * drifting away from it. Returns undefined when there are no candidates.
 */
function pickBest(candidates: ReadonlyArray<Candidate>): Candidate | undefined {
  const fastest = candidates.reduce((min, c) => Math.min(min, c.seconds), Number.POSITIVE_INFINITY)
  const ties = candidates.filter((c) => c.seconds <= fastest * (1 + tieTolerance))
  return ties.reduce<Candidate | undefined>((best, c) => (best === undefined || c.memorySeconds < best.memorySeconds ? c : best), undefined)
}

const memorySeconds = (r: { hbm: number; l2: number; smem: number }): number => r.hbm + r.l2 + r.smem

/** A tiling with a cheap lower bound on its time and a way to price it exactly. */
interface Contender {
  readonly bound: number
  readonly exact: () => Candidate
}

/**
 * Price exactly only the tilings that can fall within tieTolerance of the
 * fastest: every exact time is at least its bound, so a tiling whose bound
 * exceeds the fastest exact time found so far by more than the tolerance can
 * neither win nor tie. Returns the exactly priced candidates.
 */
function priceContenders(contenders: ReadonlyArray<Contender>, fastestSoFar = Number.POSITIVE_INFINITY): Candidate[] {
  const ordered = [...contenders].sort((a, b) => a.bound - b.bound)
  const priced: Candidate[] = []
  let fastest = fastestSoFar
  for (const contender of ordered) {
    if (contender.bound > fastest * (1 + tieTolerance)) break
    const candidate = contender.exact()
    priced.push(candidate)
    fastest = Math.min(fastest, candidate.seconds)
  }
  return priced
}

interface SearchResult {
  readonly best: DenseTiling
  readonly considered: number
  readonly bySplits?: ReadonlyMap<number, DenseTiling> | undefined
}

function searchForward(request: DenseRequest, device: DeviceRates, kernels: ReadonlyArray<KernelGeneration>, rejected: Rejection[]): SearchResult {
  const { shape, phase } = request
  const group = shape.heads / shape.kvHeads
  const priced: Candidate[] = []
  let considered = 0
  const fused = request.fusedCombine === true
  // With a fused combine, each split count is a search of its own.
  const contendersBySplits = new Map<number, Contender[]>()
  const comparedSeconds = (cost: CostBreakdown): number => (fused ? cost.kernels.filter((k) => k.name !== "combine").reduce((sum, k) => sum + k.seconds, 0) : cost.seconds)

  // Generations in order of a bound that needs no schedule; a generation whose
  // bound is already beyond the tie window of the fastest tiling is skipped.
  // A fused search needs the best tiling of every split count, not only the
  // fastest overall, so it skips no generation.
  const ordered = [...kernels].sort((a, b) => generationBound(request, device, a) - generationBound(request, device, b))
  for (const kernel of ordered) {
    const fastest = priced.reduce((min, c) => Math.min(min, c.seconds), Number.POSITIVE_INFINITY)
    if (!fused && generationBound(request, device, kernel) > fastest * (1 + tieTolerance)) continue

    const contenders: Contender[] = []
    for (const candidate of candidateShapes(kernel, false)) {
      const fit = residency({ ...candidate, headDim: shape.headDim, headDimV: shape.headDimV, elementBytes: device.elementBytes, sharedKV: shape.sharedKV }, device)
      const base = baseTiling(request, kernel, candidate)
      if (typeof fit === "string") {
        rejected.push({ tiling: describeTiling({ ...base, ctasPerSm: 0, splits: 1, packGqa: false }), reason: fit })
        continue
      }
      const packings = group > 1 ? [false, true] : [false]
      for (const packGqa of packings) {
        for (const splits of splitCounts(request, device, { ...base, ctasPerSm: fit.ctasPerSm, splits: 1, packGqa })) {
          const tiling: DenseTiling = { ...base, ctasPerSm: fit.ctasPerSm, splits, packGqa }
          const schedule = new DenseSchedule({ shape, phase: phase === "train" ? "prefill" : phase, tiling })
          const contender: Contender = {
            bound: comparedSeconds(priceDense(schedule, device, "lower-bound")),
            exact: () => {
              const cost = priceDense(schedule, device)
              return { tiling, seconds: comparedSeconds(cost), memorySeconds: memorySeconds(cost.resourceSeconds) }
            }
          }
          contenders.push(contender)
          if (fused) contendersBySplits.set(splits, [...(contendersBySplits.get(splits) ?? []), contender])
        }
      }
    }
    considered += contenders.length
    if (!fused) priced.push(...priceContenders(contenders, fastest))
  }
  if (!fused) {
    const best = pickBest(priced)
    if (!best) throw noLegalTiling(device, rejected)
    return { best: best.tiling, considered }
  }

  const bySplits = new Map<number, DenseTiling>()
  const winners: Candidate[] = []
  for (const [splits, contenders] of [...contendersBySplits].sort((a, b) => a[0] - b[0])) {
    const winner = pickBest(priceContenders(contenders))
    if (!winner) continue
    bySplits.set(splits, winner.tiling)
    winners.push(winner)
  }
  const best = pickBest(winners)
  if (!best) throw noLegalTiling(device, rejected)
  return { best: best.tiling, considered, bySplits }
}

/**
 * A lower bound on any forward tiling of a generation, from the shape alone:
 * the useful FLOPs at the generation's tensor rate, or the unique Q, K, V and O
 * bytes at HBM bandwidth, whichever is longer.
 */
function generationBound(request: DenseRequest, device: DeviceRates, kernel: KernelGeneration): number {
  const { shape } = request
  const mmaFraction = generations[kernel].mma === "sync" ? device.syncMmaFraction : 1
  const pairs = visiblePairs(shape) * shape.batch * shape.heads
  const tensor = (2 * pairs * (shape.headDim + shape.headDimV)) / (device.tensorFlopsPerSecond * mmaFraction)
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const bytes = (rows * (shape.headDim + shape.headDimV) + shape.batch * shape.kvHeads * shape.seqLenKV * keyRowElements(shape)) * device.elementBytes
  return Math.max(tensor, bytes / device.hbmBytesPerSecond)
}

/**
 * Split-KV counts worth pricing: 1, and powers of two up to 128 when one split
 * leaves the GPU under two waves of CTAs (more splits only add combine work once
 * the SMs are full). Training never splits: the backward pass needs whole rows.
 */
function splitCounts(request: DenseRequest, device: DeviceRates, tiling: DenseTiling): ReadonlyArray<number> {
  if (request.phase === "train") return [1]
  const single = new DenseSchedule({ shape: request.shape, phase: request.phase, tiling })
  const slots = device.sms * tiling.ctasPerSm
  if (single.forwardItems >= 2 * slots) return [1]
  const keyTiles = Math.ceil(request.shape.seqLenKV / tiling.blockN)
  const counts = [1]
  for (let splits = 2; splits <= Math.min(128, keyTiles); splits *= 2) counts.push(splits)
  return counts
}

function searchBackward(request: DenseRequest, device: DeviceRates, kernel: KernelGeneration, rejected: Rejection[]): SearchResult {
  const { shape } = request
  const contenders: Contender[] = []
  const forward: DenseTiling = { ...baseTiling(request, kernel, { blockM: 64, blockN: 64, stages: 1, warps: 4 }), ctasPerSm: 1, splits: 1, packGqa: false }

  for (const candidate of candidateShapes(kernel, true)) {
    const fit = residency({ ...candidate, headDim: shape.headDim, headDimV: shape.headDimV, elementBytes: device.elementBytes }, device)
    const base = baseTiling(request, kernel, candidate)
    if (typeof fit === "string") {
      rejected.push({ tiling: `backward ${describeTiling({ ...base, ctasPerSm: 0, splits: 1, packGqa: false })}`, reason: fit })
      continue
    }
    const tiling: DenseTiling = { ...base, ctasPerSm: fit.ctasPerSm, splits: 1, packGqa: false }
    const schedule = new DenseSchedule({ shape, phase: "train", tiling: forward, backwardTiling: tiling })
    const backwardCost = (waves: WaveModel) => {
      const cost = priceDense(schedule, device, waves)
      return cost.kernels.find((k) => k.name === "backward") ?? cost
    }
    contenders.push({
      bound: backwardCost("lower-bound").seconds,
      exact: () => {
        const cost = backwardCost("exact")
        return { tiling, seconds: cost.seconds, memorySeconds: memorySeconds(cost.resourceSeconds) }
      }
    })
  }
  const best = pickBest(priceContenders(contenders))
  if (!best) throw noLegalTiling(device, rejected)
  return { best: best.tiling, considered: contenders.length }
}

function noLegalTiling(device: DeviceRates, rejected: ReadonlyArray<Rejection>): PlanError {
  const reasons = [...new Set(rejected.map((r) => r.reason))].slice(0, 3).join("; ")
  return new PlanError({ variant: "dense", device: device.profileId, reason: `no tiling fits (${reasons})` })
}
