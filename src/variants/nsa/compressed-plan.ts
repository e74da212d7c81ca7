import type { KernelCost } from "../../cost/breakdown.js"
import type { WorkCounts } from "../../cost/counts.js"
import { priceKernel } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { generations, type KernelGeneration } from "../dense/generations.js"
import { describeTiling, PlanError, type Rejection } from "../dense/plan.js"
import { bytesPerElement } from "../dense/schedule.js"
import { candidateShapes, makeTiling, residency, type DenseTiling, type TileShape } from "../dense/tiling.js"
import { CompressedSchedule, compressedQueryRows, type CompressedWorkItem } from "./compressed-schedule.js"
import { blocksExisting, type NsaGeometry } from "./geometry.js"
import { classKernel, evenKernel, fitsInL2, sharedKvHbmBytes, type UnpricedClass } from "./pricing.js"

export interface CompressedPlan {
  readonly schedule: CompressedSchedule
  readonly tiling: DenseTiling
  readonly backwardTiling?: DenseTiling | undefined
  /** The selection-scoring kernels planned for this tiling. Undefined when the search did not ask for them. */
  readonly scores: ScorePlan | undefined
  readonly considered: number
}

export interface CompressedSearch {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly kernels: ReadonlyArray<KernelGeneration>
  /** Whether the operation runs the selection-scoring kernels, which take this branch's kernel generation and split count. */
  readonly scored: boolean
}

/**
 * Chooses the compression branch's tiling: FlashAttention-2/3 tile shapes that
 * fit the device, GQA packing, and split-KV where one split leaves the GPU
 * under two waves (not in training). Each candidate is priced with every
 * kernel whose cost its tiling sets: the forward kernel, the split-KV combine
 * and, when `scored`, the best selection-scoring kernels for its generation
 * and split count (a split adds the `select-topk` launch). Returns undefined
 * when the sequence is shorter than one compression block.
 */
export function planCompressed(search: CompressedSearch, device: DeviceRates, rejected: Rejection[]): CompressedPlan | undefined {
  const { shape, geometry, phase, kernels } = search
  const probe = new CompressedSchedule({ shape, geometry, phase: "prefill", tiling: baseTiling("fa2", { blockM: 64, blockN: 64, stages: 1, warps: 4 }, 1, 1, false) })
  if (probe.tokens === 0) return undefined

  const group = shape.heads / shape.kvHeads
  // The scoring search depends on the candidate only through its generation and split count.
  const scorePlans = new Map<string, ScorePlan>()
  const scoresFor = (tiling: DenseTiling): ScorePlan | undefined => {
    if (!search.scored) return undefined
    const key = `${tiling.kernel}/${tiling.splits}`
    let scores = scorePlans.get(key)
    if (!scores) {
      scores = searchScores(shape, geometry, phase, tiling, device)
      scorePlans.set(key, scores)
    }
    return scores
  }

  let best: { tiling: DenseTiling; seconds: number } | undefined
  let considered = 0
  for (const kernel of kernels) {
    for (const candidate of candidateShapes(kernel, false)) {
      const fit = residency({ ...candidate, headDim: shape.headDim, headDimV: shape.headDimV, elementBytes: device.elementBytes }, device)
      if (typeof fit === "string") {
        rejected.push({ tiling: `compressed ${describeTiling(baseTiling(kernel, candidate, 0, 1, false))}`, reason: fit })
        continue
      }
      for (const packGqa of group > 1 ? [false, true] : [false]) {
        for (const splits of splitCounts(shape, geometry, phase, baseTiling(kernel, candidate, fit.ctasPerSm, 1, packGqa), device)) {
          const tiling = baseTiling(kernel, candidate, fit.ctasPerSm, splits, packGqa)
          const schedule = new CompressedSchedule({ shape, geometry, phase, tiling })
          considered++
          const combine = priceCompressedCombine(schedule, device)
          const seconds = priceCompressedForward(schedule, device).seconds + (combine?.seconds ?? 0) + (scoresFor(tiling)?.seconds ?? 0)
          if (!best || seconds < best.seconds * (1 - 1e-9)) best = { tiling, seconds }
        }
      }
    }
  }
  if (!best) throw new PlanError({ variant: "nsa", device: device.profileId, reason: "no compressed-attention tiling fits" })

  const backwardTiling = phase === "train" ? searchBackward(shape, geometry, best.tiling.kernel, device, rejected) : undefined
  const schedule = new CompressedSchedule({ shape, geometry, phase, tiling: best.tiling, backwardTiling: backwardTiling?.tiling })
  return {
    schedule,
    tiling: best.tiling,
    backwardTiling: backwardTiling?.tiling,
    scores: scoresFor(best.tiling),
    considered: considered + (backwardTiling?.considered ?? 0)
  }
}

function baseTiling(kernel: KernelGeneration, candidate: TileShape, ctasPerSm: number, splits: number, packGqa: boolean): DenseTiling {
  return makeTiling(kernel, candidate, { ctasPerSm, splits, packGqa })
}

/** Lists the split counts to try: 1, and powers of two up to the compressed key tiles when one split gives under two waves of CTAs. */
function splitCounts(shape: AttentionShape, geometry: NsaGeometry, phase: Phase, tiling: DenseTiling, device: DeviceRates): ReadonlyArray<number> {
  if (phase === "train") return [1]
  const single = new CompressedSchedule({ shape, geometry, phase, tiling })
  if (single.forwardItems >= 2 * device.sms * tiling.ctasPerSm) return [1]
  const keyTiles = Math.ceil(single.tokens / tiling.blockN)
  const counts = [1]
  for (let splits = 2; splits <= Math.min(128, keyTiles); splits *= 2) counts.push(splits)
  return counts
}

function searchBackward(
  shape: AttentionShape,
  geometry: NsaGeometry,
  kernel: KernelGeneration,
  device: DeviceRates,
  rejected: Rejection[]
): { tiling: DenseTiling; considered: number } {
  const forward = baseTiling(kernel, { blockM: 64, blockN: 64, stages: 1, warps: 4 }, 1, 1, false)
  let best: { tiling: DenseTiling; seconds: number } | undefined
  let considered = 0
  for (const candidate of candidateShapes(kernel, true)) {
    const fit = residency({ ...candidate, headDim: shape.headDim, headDimV: shape.headDimV, elementBytes: device.elementBytes }, device)
    if (typeof fit === "string") {
      rejected.push({ tiling: `compressed backward ${describeTiling(baseTiling(kernel, candidate, 0, 1, false))}`, reason: fit })
      continue
    }
    const tiling = baseTiling(kernel, candidate, fit.ctasPerSm, 1, false)
    const schedule = new CompressedSchedule({ shape, geometry, phase: "train", tiling: forward, backwardTiling: tiling })
    considered++
    const seconds = priceCompressedBackward(schedule, device).seconds
    if (!best || seconds < best.seconds * (1 - 1e-9)) best = { tiling, seconds }
  }
  if (!best) throw new PlanError({ variant: "nsa", device: device.profileId, reason: "no compressed-attention backward tiling fits" })
  return { tiling: best.tiling, considered }
}

const classesOf = (schedule: CompressedSchedule, kernel: CompressedWorkItem["kernel"]) => schedule.classes.filter((c) => c.kernel === kernel)

/**
 * Prices the compressed-attention forward kernel. Queries and outputs (or
 * split partials) cross HBM once, and the compressed K/V of each KV head
 * follows the dense kernels' reuse rule. Compressed K/V is 1/d of the raw
 * cache, so it usually stays in L2.
 */
export function priceCompressedForward(schedule: CompressedSchedule, device: DeviceRates): KernelCost {
  const { shape, tiling } = schedule
  const s = bytesPerElement(shape)
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const outputBytes = tiling.splits > 1 ? tiling.splits * rows * (shape.headDimV + 1) * 4 : rows * (shape.headDimV * s + 4)
  const kvBytes = sharedKvHbmBytes(
    {
      bytesPerHead: schedule.visible(shape.seqLenQ - 1) * (shape.headDim + shape.headDimV) * s,
      heads: shape.batch * shape.kvHeads,
      itemsPerHead: schedule.queryTiles * tiling.splits * (schedule.group / schedule.headsPerItem),
      readers: schedule.queryTiles * (schedule.group / schedule.headsPerItem),
      ctasPerSm: tiling.ctasPerSm
    },
    device
  )
  const classes: UnpricedClass[] = classesOf(schedule, "forward").map((c) => ({
    count: c.count,
    counts: c.counts,
    prologueBytes: compressedQueryRows(c.representative) * shape.headDim * s + tiling.blockN * (shape.headDim + shape.headDimV) * s,
    epilogueBytes: compressedQueryRows(c.representative) * shape.headDimV * (tiling.splits > 1 ? 4 : s)
  }))
  const spec = classKernel({
    name: "compressed-forward",
    classes,
    hbmBytes: rows * shape.headDim * s + outputBytes + kvBytes,
    ctasPerSm: tiling.ctasPerSm,
    generation: tiling.kernel,
    softmaxOverlap: tiling.softmaxOverlap
  })
  return priceKernel(spec, device)
}

/**
 * Prices the merge of split partials into the compressed output and its
 * log-sum-exp, which the selection scores need before the final combine.
 */
export function priceCompressedCombine(schedule: CompressedSchedule, device: DeviceRates): KernelCost | undefined {
  if (schedule.combineItems === 0) return undefined
  const classes = classesOf(schedule, "combine").map((c) => ({ count: c.count, counts: c.counts, prologueBytes: 0, epilogueBytes: 0 }))
  const l2 = classes.reduce((sum, c) => sum + c.count * c.counts.bytes.l2, 0)
  const spec = classKernel({ name: "compressed-combine", classes, hbmBytes: l2, ctasPerSm: Math.min(8, device.maxCtasPerSm), generation: "fa2", softmaxOverlap: 0 })
  return priceKernel(spec, device)
}

/**
 * Prices the compressed-attention backward kernel, FlashAttention-2 style over
 * compressed tokens: K/V tiles stay on chip while query tiles stream past. Q,
 * dO and dQ traffic reaches HBM once per pass over a head's key tiles, as for
 * dense.
 */
export function priceCompressedBackward(schedule: CompressedSchedule, device: DeviceRates): KernelCost {
  const { shape } = schedule
  const tiling = schedule.backwardTiling!
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const slots = device.sms * tiling.ctasPerSm
  const itemsPerHead = Math.max(1, schedule.keyTilesBackward)
  const queryBytesPerHead = shape.seqLenQ * ((dk + dv) * s + 8)
  const dqBytesPerHead = shape.seqLenQ * dk * 4
  const headsInFlight = Math.min(shape.batch * shape.heads, Math.max(1, slots / itemsPerHead))
  const passes = fitsInL2(headsInFlight * (queryBytesPerHead + dqBytesPerHead), device) ? 1 : Math.max(1, Math.ceil(itemsPerHead / slots))
  const heads = shape.batch * shape.heads
  const hbmBytes = 2 * heads * schedule.tokens * (dk + dv) * s + heads * passes * (queryBytesPerHead + 2 * dqBytesPerHead)

  const classes: UnpricedClass[] = classesOf(schedule, "backward").map((c) => {
    const keyBytes = (c.representative.keyEnd - c.representative.keyStart) * (dk + dv) * s
    return { count: c.count, counts: c.counts, prologueBytes: keyBytes, epilogueBytes: keyBytes }
  })
  const spec = classKernel({
    name: "compressed-backward",
    classes,
    hbmBytes,
    ctasPerSm: tiling.ctasPerSm,
    generation: tiling.kernel,
    softmaxOverlap: tiling.softmaxOverlap,
    mmaEfficiency: tiling.backwardMmaEfficiency
  })
  return priceKernel(spec, device)
}

/**
 * Returns the average number of selection blocks one compressed token overlaps. Tokens
 * start at multiples of d and l' is a multiple of d, so the start modulo l'
 * runs evenly over 0, d, …, l' − d.
 */
export function meanBlocksPerToken(g: NsaGeometry): number {
  const starts = g.selectBlock / g.compressStride
  let total = 0
  for (let k = 0; k < starts; k++) total += Math.floor((k * g.compressStride + g.compressBlock - 1) / g.selectBlock) + 1
  return total / starts
}

/** Vector work of a register-resident top-n insertion per candidate block: about log2(n + 1) compare-and-swap steps. */
const topKFlopsPerBlock = (g: NsaGeometry): number => 2 * Math.ceil(Math.log2(g.selectCount + 1))

/**
 * Plans the selection-scoring pass. It recomputes S = Q·K_cmpᵀ with the group's
 * heads packed (the block scores sum over them), turns it into probabilities
 * with the compressed attention's log-sum-exp, sums them over the group's
 * heads and adds each compressed token's share into the selection blocks it
 * overlaps. Unsplit, the CTA then picks the top-n blocks of each of its
 * positions and writes their indices. With split-KV (the compressed
 * attention's split count) each split writes partial block sums, and
 * `select-topk` merges them and picks. The tile shape is searched on its own,
 * within the generation and split count of the `compressed` tiling.
 */
function searchScores(shape: AttentionShape, geometry: NsaGeometry, phase: Phase, compressed: DenseTiling, device: DeviceRates): ScorePlan {
  let best: ScorePlan | undefined
  for (const candidate of candidateShapes(compressed.kernel, false)) {
    const fit = residency({ ...candidate, headDim: shape.headDim, headDimV: 0, elementBytes: device.elementBytes }, device)
    if (typeof fit === "string") continue
    const tiling: DenseTiling = { ...compressed, ...candidate, ctasPerSm: fit.ctasPerSm, packGqa: true }
    const schedule = new CompressedSchedule({ shape, geometry, phase: phase === "decode" ? "decode" : "prefill", tiling })
    const kernels = priceScores(schedule, device)
    const seconds = kernels.reduce((sum, k) => sum + k.seconds, 0)
    if (!best || seconds < best.seconds * (1 - 1e-9)) best = { tiling, kernels, seconds }
  }
  if (!best) throw new PlanError({ variant: "nsa", device: device.profileId, reason: "no selection-scoring tiling fits" })
  return best
}

export interface ScorePlan {
  readonly tiling: DenseTiling
  readonly kernels: ReadonlyArray<KernelCost>
  readonly seconds: number
}

function priceScores(schedule: CompressedSchedule, device: DeviceRates): KernelCost[] {
  const { shape, geometry, tiling } = schedule
  const s = bytesPerElement(shape)
  const dk = shape.headDim

  const classes: UnpricedClass[] = schedule.classes
    .filter((c) => c.kernel === "forward")
    .map((c) => ({
      count: c.count,
      counts: scoreCounts(schedule, c.representative, c.counts.usefulFlops / (2 * (dk + shape.headDimV))),
      prologueBytes: compressedQueryRows(c.representative) * dk * s + tiling.blockN * dk * s,
      epilogueBytes: 0
    }))
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const positions = shape.batch * shape.kvHeads * shape.seqLenQ
  const lastPosition = shape.seqLenKV - 1
  // The compressed-attention kernel has just streamed K_cmp and V_cmp; if all of it fits in L2, K_cmp is still there.
  const justRead = shape.batch * shape.kvHeads * schedule.tokens * (dk + shape.headDimV) * s
  const kBytes = fitsInL2(justRead, device)
    ? 0
    : sharedKvHbmBytes(
        {
          bytesPerHead: schedule.visible(shape.seqLenQ - 1) * dk * s,
          heads: shape.batch * shape.kvHeads,
          itemsPerHead: schedule.queryTiles * tiling.splits,
          readers: schedule.queryTiles,
          ctasPerSm: tiling.ctasPerSm
        },
        device
      )
  const outputBytes = tiling.splits > 1 ? tiling.splits * positions * partialBlocks(geometry, schedule.tokens, tiling.splits) * 4 : positions * geometry.selectCount * 4
  const scoreKernel = priceKernel(
    classKernel({
      name: "select-score",
      classes,
      hbmBytes: rows * (dk * s + 4) + kBytes + outputBytes,
      ctasPerSm: tiling.ctasPerSm,
      generation: tiling.kernel,
      softmaxOverlap: tiling.softmaxOverlap
    }),
    device
  )
  if (tiling.splits <= 1) return [scoreKernel]

  // Merge the splits' partial block sums and pick the top n per position.
  const blocks = blocksExisting(geometry, lastPosition)
  const partials = tiling.splits * partialBlocks(geometry, schedule.tokens, tiling.splits)
  const total: WorkCounts = {
    tensorFlops: 0,
    usefulFlops: 0,
    expOps: 0,
    vectorFlops: positions * (partials * 2 + blocks * topKFlopsPerBlock(geometry)),
    bytes: { hbm: positions * (partials + geometry.selectCount) * 4, l2: positions * (partials + geometry.selectCount) * 4, smem: 0 }
  }
  const topK = priceKernel(evenKernel("select-topk", total, Math.min(positions, device.sms * 4), 4, device), device)
  return [scoreKernel, topK]
}

/** Block sums one split writes: the blocks its share of compressed tokens overlaps, plus one at each edge. */
function partialBlocks(g: NsaGeometry, tokens: number, splits: number): number {
  return Math.ceil((tokens * g.compressStride) / g.selectBlock / splits) + 2
}

/**
 * Counts the work of one scoring CTA (see planSelectionScores); `pairs` is the class's
 * mean number of visible (query row, compressed token) pairs over all heads.
 */
function scoreCounts(schedule: CompressedSchedule, item: CompressedWorkItem, pairs: number): WorkCounts {
  const { shape, geometry, tiling } = schedule
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const { steps, keys, partialSteps } = schedule.forwardStepSummary(item)
  const realRows = compressedQueryRows(item)
  const positions = item.queryEnd - item.queryStart
  const scores = steps * item.rows * tiling.blockN
  const tokensSeen = pairs / item.heads.length
  const lastPosition = item.queryEnd - 1 + schedule.offset
  const readers = generations[tiling.kernel].readersPerCta(tiling.warps, item.rows)

  // Per score: scale and subtract the log-sum-exp (one FMA), add into the group's token sum (one add): 4 FLOP.
  // Per (position, visible token): add into each overlapped block. Unsplit: top-n over the blocks that exist.
  const topK = tiling.splits > 1 ? 0 : positions * blocksExisting(geometry, lastPosition) * topKFlopsPerBlock(geometry)
  const outputBytes = tiling.splits > 1 ? positions * partialBlocks(geometry, schedule.tokens, tiling.splits) * 4 : positions * geometry.selectCount * 4
  return {
    tensorFlops: 2 * scores * dk,
    usefulFlops: 2 * dk * pairs,
    expOps: scores,
    vectorFlops: scores * 4 + partialSteps * item.rows * tiling.blockN * 4 + tokensSeen * meanBlocksPerToken(geometry) * 2 + topK,
    bytes: {
      hbm: 0,
      l2: keys * dk * s + realRows * (dk * s + 4) + outputBytes,
      smem: keys * dk * s + steps * (item.rows * dk * s + readers * tiling.blockN * dk * s) + item.rows * dk * s
    }
  }
}
