import type { KernelCost } from "../../cost/breakdown.js"
import { priceKernel } from "../../cost/kernel-time.js"
import { streamingKernel } from "../../cost/streaming.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { generations, type KernelGeneration } from "../dense/generations.js"
import { PlanError, type Rejection } from "../dense/plan.js"
import { bytesPerElement } from "../dense/schedule.js"
import { residency } from "../dense/tiling.js"
import { blocksExisting, currentBlock, forcedBlockCount, forcedUnion, keysOverPositions, selectedBlockCount, selectedBlocksOverPositions, type NsaGeometry } from "./geometry.js"
import { keyBlockGradientCounts } from "./tile-counts.js"
import { classKernel, fitsInL2, type UnpricedClass } from "./pricing.js"
import { describeSelectionTiling, SelectionSchedule, type SelectionTiling, type SelectionWorkItem } from "./selection-schedule.js"

export interface SelectionPlan {
  readonly schedule: SelectionSchedule
  readonly tiling: SelectionTiling
  /** Seconds the search compared: the forward kernel, `consumerSeconds` and, in training, the backward kernels. */
  readonly seconds: number
  readonly considered: number
}

export interface SelectionSearch {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly kernels: ReadonlyArray<KernelGeneration>
  /** Key-tile widths to try; by default those of 16, 32, 64, 128 that divide l'. */
  readonly blockNs?: ReadonlyArray<number> | undefined
  /**
   * Seconds of the kernel that reads this branch's output when the forward
   * kernel writes it as `splits` partials (1: unsplit). The NSA plan passes
   * its final combine-gate kernel, which merges the partials. Absent means
   * the caller prices the forward kernel alone.
   */
  readonly consumerSeconds?: ((splits: number) => number) | undefined
}

/** Smallest key tile an MMA can take (the k dimension of a 16-bit P·V product). */
const minimumBlockN = 16

/** Key-tile widths that divide the selection block, or the minimum tile (padded) when l' is smaller. */
export function selectionBlockNs(g: NsaGeometry): ReadonlyArray<number> {
  const dividing = [16, 32, 64, 128].filter((n) => g.selectBlock % n === 0)
  return dividing.length > 0 ? dividing : [minimumBlockN]
}

/** A legal selection tiling with the seconds of the kernels whose cost it sets, apart from the consumer of its output. */
export interface SelectionCandidate {
  readonly tiling: SelectionTiling
  /** The forward kernel and, in training, the backward kernels. */
  readonly seconds: number
}

/**
 * Chooses the group-centric selection kernel's tiling: the MMA generation
 * (which sets the row padding of the G heads), key tile and pipeline stages.
 * Where one CTA per position leaves the GPU under two waves (not in
 * training), it also tries split-KV over the selected blocks. Each candidate
 * is priced with every kernel whose cost its tiling sets: the forward kernel,
 * the kernel that reads its output (`consumerSeconds`) and, in training, the
 * backward kernels.
 */
export function planSelection(search: SelectionSearch, device: DeviceRates, rejected: Rejection[]): SelectionPlan {
  return pickSelection(search, priceSelectionCandidates(search, device, rejected))
}

/**
 * Picks the fastest of `candidates` (from priceSelectionCandidates with the
 * same search) with `search.consumerSeconds` added. Callers that try several
 * consumers price the candidates once.
 */
export function pickSelection(search: SelectionSearch, candidates: ReadonlyArray<SelectionCandidate>): SelectionPlan {
  let best: { tiling: SelectionTiling; seconds: number } | undefined
  for (const candidate of candidates) {
    const seconds = candidate.seconds + (search.consumerSeconds?.(candidate.tiling.splits) ?? 0)
    if (!best || seconds < best.seconds * (1 - 1e-9)) best = { tiling: candidate.tiling, seconds }
  }
  if (!best) throw new Error("pickSelection needs at least one candidate")
  const { shape, geometry, phase } = search
  return { schedule: new SelectionSchedule({ shape, geometry, phase, tiling: best.tiling }), tiling: best.tiling, seconds: best.seconds, considered: candidates.length }
}

/** Lists the legal selection tilings of a search, each priced without the consumer of its output. Tilings that do not fit go to `rejected`. */
export function priceSelectionCandidates(search: SelectionSearch, device: DeviceRates, rejected: Rejection[]): SelectionCandidate[] {
  const { shape, geometry, phase } = search
  const group = shape.heads / shape.kvHeads
  const candidates: SelectionCandidate[] = []
  for (const kernel of search.kernels) {
    const mmaRows = generations[kernel].mmaRows
    const rows = Math.ceil(group / mmaRows) * mmaRows
    const warps = kernel === "fa3" ? 4 * (1 + rows / 64) : 4
    for (const blockN of search.blockNs ?? selectionBlockNs(geometry)) {
      for (const stages of [1, 2]) {
        const base: SelectionTiling = {
          kernel,
          rows,
          blockN,
          stages,
          warps,
          ctasPerSm: 0,
          splits: 1,
          softmaxOverlap: generations[kernel].softmaxOverlap,
          backwardMmaEfficiency: generations[kernel].backwardMmaEfficiency
        }
        const fit = residency({ kernel, blockM: rows, blockN, stages, warps, headDim: shape.headDim, headDimV: shape.headDimV, elementBytes: device.elementBytes, backward: false }, device)
        if (typeof fit === "string") {
          rejected.push({ tiling: `selected ${describeSelectionTiling(base)}`, reason: fit })
          continue
        }
        for (const splits of splitCounts(search, { ...base, ctasPerSm: fit.ctasPerSm }, device)) {
          const tiling = { ...base, ctasPerSm: fit.ctasPerSm, splits }
          const schedule = new SelectionSchedule({ shape, geometry, phase, tiling })
          const backward = phase === "train" ? priceSelectionBackward(schedule, device) : []
          const seconds = priceSelectionForward(schedule, device).seconds + backward.reduce((sum, k) => sum + k.seconds, 0)
          candidates.push({ tiling, seconds })
        }
      }
    }
  }
  if (candidates.length === 0) throw new PlanError({ variant: "nsa", device: device.profileId, reason: "no selection-kernel tiling fits" })
  return candidates
}

function splitCounts(search: SelectionSearch, tiling: SelectionTiling, device: DeviceRates): ReadonlyArray<number> {
  if (search.phase === "train") return [1]
  const { shape } = search
  const items = shape.batch * shape.kvHeads * shape.seqLenQ
  if (items >= 2 * device.sms * tiling.ctasPerSm) return [1]
  const counts = [1]
  for (let splits = 2; splits <= search.geometry.selectCount; splits *= 2) counts.push(splits)
  return counts
}

/** K/V traffic of the selected blocks, in bytes: what the CTAs load (through L2) and what reaches HBM. */
export interface KvTraffic {
  readonly l2: number
  readonly hbm: number
}

/**
 * Models the K/V traffic of the selection kernel and its L2 reuse. CTAs run in
 * item order, so a wave contains consecutive positions of one KV head. Within a
 * wave the always-kept blocks are shared, and the other selected blocks are
 * modeled as independent uniform picks, without repeats per position, from
 * the blocks before the wave's last position: each block reaches HBM once
 * per wave if any position picks it. Uniform picks are a pessimistic
 * assumption (real selections cluster, so they share more). When the whole
 * K/V of the heads in flight fits in L2, all positions of a head count as one
 * wave. `bytesPerToken` is the K+V bytes of one key.
 */
export function selectionKvTraffic(schedule: SelectionSchedule, device: DeviceRates, bytesPerToken: number): KvTraffic {
  const { shape, geometry, tiling, offset } = schedule
  const slots = device.sms * tiling.ctasPerSm
  const headsInFlight = Math.min(shape.batch * shape.kvHeads, Math.max(1, slots / (shape.seqLenQ * tiling.splits)))
  const resident = fitsInL2(headsInFlight * shape.seqLenKV * bytesPerToken, device)
  const waveSize = resident ? shape.seqLenQ : Math.max(1, Math.floor(slots / tiling.splits))

  let loadedKeys = 0
  let hbmKeys = 0
  for (let first = 0; first < shape.seqLenQ; first += waveSize) {
    const end = Math.min(shape.seqLenQ, first + waveSize)
    const lastPosition = end - 1 + offset
    const forced = forcedUnion(geometry, currentBlock(geometry, first + offset), currentBlock(geometry, lastPosition))
    const pool = blocksExisting(geometry, lastPosition) - forced
    let waveKeys = 0
    let logMissed = 0
    for (let query = first; query < end; query++) {
      const position = query + offset
      waveKeys += schedule.summary(position, 0, 1).keys
      const picks = selectedBlockCount(geometry, position) - forcedBlockCount(geometry, position)
      if (picks > 0) logMissed += picks >= pool ? -Infinity : Math.log1p(-picks / pool)
    }
    const distinctBlocks = forced + (pool > 0 ? pool * -Math.expm1(logMissed) : 0)
    loadedKeys += waveKeys
    hbmKeys += Math.min(waveKeys, distinctBlocks * geometry.selectBlock)
  }
  const heads = shape.batch * shape.kvHeads
  return { l2: heads * loadedKeys * bytesPerToken, hbm: heads * hbmKeys * bytesPerToken }
}

/** The forward kernel's CTA classes and its HBM traffic split into K/V and the rest (queries, outputs, block indices). */
export interface SelectionForwardParts {
  readonly classes: ReadonlyArray<UnpricedClass & { readonly representative: SelectionWorkItem }>
  readonly kv: KvTraffic
  readonly otherHbmBytes: number
}

export function selectionForwardParts(schedule: SelectionSchedule, device: DeviceRates): SelectionForwardParts {
  const { shape, tiling, geometry } = schedule
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const group = schedule.group
  const classes = schedule.classes
    .filter((c) => c.kernel === "forward")
    .map((c) => ({
      count: c.count,
      counts: c.counts,
      representative: c.representative,
      prologueBytes: group * dk * s + tiling.blockN * (dk + dv) * s,
      epilogueBytes: group * dv * (tiling.splits > 1 ? 4 : s)
    }))
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const positions = shape.batch * shape.kvHeads * shape.seqLenQ
  const outputBytes = tiling.splits > 1 ? tiling.splits * rows * (dv + 1) * 4 : rows * dv * s + (schedule.phase === "train" ? rows * 4 : 0)
  return {
    classes,
    kv: selectionKvTraffic(schedule, device, (dk + dv) * s),
    otherHbmBytes: rows * dk * s + outputBytes + positions * geometry.selectCount * 4
  }
}

/** Prices the group-centric selection forward kernel. */
export function priceSelectionForward(schedule: SelectionSchedule, device: DeviceRates, name = "selected-forward"): KernelCost {
  const parts = selectionForwardParts(schedule, device)
  return priceKernel(
    classKernel({
      name,
      classes: parts.classes,
      hbmBytes: parts.kv.hbm + parts.otherHbmBytes,
      ctasPerSm: schedule.tiling.ctasPerSm,
      generation: schedule.tiling.kernel,
      softmaxOverlap: schedule.tiling.softmaxOverlap
    }),
    device
  )
}

/**
 * Prices the training kernels of the selection branch, in the shape open NSA kernels
 * use: a preprocess (D = rowsum(dO ⊙ O)); a reverse index listing, for every
 * selection block, the positions that selected it; a group-centric dQ pass
 * over the same tiles as the forward kernel; and a key-centric dK/dV pass with
 * one CTA per selection block, so no FP32 atomics are needed.
 *
 * NOTE: the dK/dV pass is priced with the selections spread evenly over the
 * blocks. In practice every query selects the initial block, so its CTA is
 * the longest and the real kernel has a longer tail.
 */
export function priceSelectionBackward(schedule: SelectionSchedule, device: DeviceRates): KernelCost[] {
  const { shape, tiling, geometry } = schedule
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const group = schedule.group
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const heads = shape.batch * shape.kvHeads
  const selections = heads * selectedBlocksOverPositions(geometry, schedule.offset, schedule.offset + shape.seqLenQ)

  const preprocess = priceKernel(streamingKernel("selected-backward-preprocess", rows * (2 * dv * s + 4), rows * dv * 2, device), device)
  // Read the forward pass's block indices, write them bucketed by block with a count per block.
  const index = priceKernel(streamingKernel("selected-backward-index", selections * 4 * 2 + heads * blocksExisting(geometry, shape.seqLenKV - 1) * 4, selections * 2, device), device)

  const kv = selectionKvTraffic(schedule, device, (dk + dv) * s)
  const dqClasses = schedule.classes
    .filter((c) => c.kernel === "backward")
    .map((c) => ({ count: c.count, counts: c.counts, prologueBytes: group * (dk + dv) * s, epilogueBytes: group * dk * 4 }))
  const dq = priceKernel(
    classKernel({
      name: "selected-backward-dq",
      classes: dqClasses,
      hbmBytes: kv.hbm + rows * ((dk + dv) * s + 8 + dk * 4),
      ctasPerSm: tiling.ctasPerSm,
      generation: tiling.kernel,
      softmaxOverlap: tiling.softmaxOverlap,
      mmaEfficiency: tiling.backwardMmaEfficiency
    }),
    device
  )
  return [preprocess, index, dq, priceKeyBlockGradient(schedule, selections, device)]
}

/**
 * Prices the key-centric dK/dV pass. Query-side rows reach HBM at most once per wave
 * of block CTAs (each wave sweeps the positions once), and never more often
 * than the CTAs load them.
 */
function priceKeyBlockGradient(schedule: SelectionSchedule, selections: number, device: DeviceRates): KernelCost {
  const { shape, tiling, geometry } = schedule
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const blockKeys = geometry.selectBlock
  const heads = shape.batch * shape.kvHeads
  const ctas = heads * blocksExisting(geometry, shape.seqLenKV - 1)
  const fit = residency({ kernel: tiling.kernel, blockM: tiling.rows, blockN: blockKeys, stages: tiling.stages, warps: tiling.warps, headDim: dk, headDimV: dv, elementBytes: s, backward: true }, device)
  const ctasPerSm = typeof fit === "string" ? 1 : fit.ctasPerSm
  const visiblePerHead = keysOverPositions(geometry, schedule.offset, schedule.offset + shape.seqLenQ).selected

  const perCta = keyBlockGradientCounts({
    visits: selections / ctas,
    rows: tiling.rows,
    realRows: schedule.group,
    blockKeys,
    pairs: (heads * visiblePerHead * schedule.group) / ctas,
    headDim: dk,
    headDimV: dv,
    elementBytes: s,
    readers: generations[tiling.kernel].readersPerCta(tiling.warps, tiling.rows)
  })
  const rowBytes = shape.batch * shape.heads * shape.seqLenQ * ((dk + dv) * s + 8)
  const waves = Math.ceil(ctas / (device.sms * ctasPerSm))
  const queryHbm = Math.min(perCta.bytes.l2 * ctas, waves * rowBytes)
  const blockBytes = 2 * heads * shape.seqLenKV * (dk + dv) * s
  return priceKernel(
    classKernel({
      name: "selected-backward-dkv",
      classes: [{ count: ctas, counts: perCta, prologueBytes: blockKeys * (dk + dv) * s, epilogueBytes: blockKeys * (dk + dv) * s }],
      hbmBytes: Math.min(perCta.bytes.l2 * ctas, queryHbm + blockBytes),
      ctasPerSm,
      generation: tiling.kernel,
      softmaxOverlap: tiling.softmaxOverlap,
      mmaEfficiency: tiling.backwardMmaEfficiency
    }),
    device
  )
}
