import type { KernelCost } from "../../cost/breakdown.js"
import { priceKernel } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import type { KernelGeneration } from "../dense/generations.js"
import type { Rejection } from "../dense/plan.js"
import { bytesPerElement } from "../dense/schedule.js"
import { selectedKeys, type NsaGeometry } from "./geometry.js"
import { classKernel } from "./pricing.js"
import { planSelection, priceSelectionForward, selectionForwardParts, type SelectionPlan } from "./selection-plan.js"
import { describeSelectionTiling } from "./selection-schedule.js"

/**
 * Bandwidth a scattered run loses in HBM, in bytes: about two DRAM bursts
 * (row activation and bank turnaround) per run that does not continue the
 * previous one. An assumption, not a measured figure; it makes a 64-byte
 * gather reach a third of streaming bandwidth and a 24 KiB block 99.5 %.
 */
const scatteredRunOverheadTransactions = 2

/** Selection block and key tile of contrast (d): a 16-token block in a 64-key tile. */
const smallBlock = 16
const largeTile = 64

export interface AlignmentCase {
  readonly name: string
  readonly description: string
  readonly tiling: string
  readonly seconds: number
  /** Time relative to NSA's group-centric blockwise kernel. */
  readonly relativeTime: number
  /** Bytes moved: HBM after L2 reuse, and every load and store through L2. */
  readonly bytes: { readonly hbm: number; readonly l2: number }
  readonly tensorFlops: number
  readonly usefulFlops: number
  /** MMA rows per work item (real rows padded to the MMA tile height). */
  readonly mmaRows: number
  readonly bound: string
}

export interface AlignmentAnalysis {
  readonly phase: Phase
  /** Keys the selection branch attends per query (the same in every case). */
  readonly selectedKeysPerQuery: number
  readonly assumptions: ReadonlyArray<string>
  readonly cases: ReadonlyArray<AlignmentCase>
}

export interface AlignmentInput {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly kernels: ReadonlyArray<KernelGeneration>
  readonly selection: SelectionPlan
}

/**
 * Prices the selection kernel four ways at the same sparsity, that is the
 * same number of keys per query. (a) is NSA's group-centric blockwise kernel
 * as planned, (b) the same keys chosen as individual tokens and gathered row
 * by row, (c) selection per query head instead of per group, and (d)
 * selection blocks smaller than the kernel's key tile. Training compares the
 * forward kernels.
 */
export function alignmentAnalysis(input: AlignmentInput, device: DeviceRates): AlignmentAnalysis {
  const { shape, geometry, kernels, selection } = input
  const phase: Phase = input.phase === "train" ? "prefill" : input.phase
  const rejected: Rejection[] = []
  const group = shape.heads / shape.kvHeads

  const blockwise = priceSelectionForward(selection.schedule, device)
  const base = describe(blockwise)

  const cases: AlignmentCase[] = [
    {
      name: "group-centric blocks (NSA)",
      description: `one CTA per (position, KV-head group): the ${group} heads of the group are the MMA rows, and each selected block of ${geometry.selectBlock} keys is loaded once, contiguously`,
      tiling: describeSelectionTiling(selection.tiling),
      ...base,
      relativeTime: 1,
      mmaRows: selection.tiling.rows
    }
  ]

  const tokens = tokenLevel(selection, device)
  cases.push({
    name: "token-level selection",
    description:
      `the same ${selectedKeys(geometry, shape.seqLenKV - 1)} keys per query chosen as single tokens (still shared by the group): every K and V row is a separate ` +
      `gather, rounded up to whole transactions and served at ${(tokens.efficiency * 100).toFixed(0)} % of streaming HBM bandwidth, and each item reads one index per token`,
    tiling: describeSelectionTiling(selection.tiling),
    ...describe(tokens.cost, tokens.hbmBytes),
    relativeTime: tokens.cost.seconds / blockwise.seconds,
    mmaRows: selection.tiling.rows
  })

  const perHeadShape: AttentionShape = { ...shape, kvHeads: shape.heads }
  const perHead = planSelection({ shape: perHeadShape, geometry, phase, kernels }, device, rejected)
  const perHeadCost = priceSelectionForward(perHead.schedule, device)
  cases.push({
    name: "per-head selection",
    description:
      `each query head selects its own blocks: one CTA per (position, head) with 1 real row padded to ${perHead.tiling.rows} MMA rows, ` +
      `and the group's K/V bytes up to ${group}× (priced at ${group}×: heads picking disjoint blocks)`,
    tiling: describeSelectionTiling(perHead.tiling),
    ...describe(perHeadCost),
    relativeTime: perHeadCost.seconds / blockwise.seconds,
    mmaRows: perHead.tiling.rows
  })

  const smallGeometry: NsaGeometry = {
    ...geometry,
    selectBlock: smallBlock,
    selectCount: Math.ceil((geometry.selectCount * geometry.selectBlock) / smallBlock),
    initialBlocks: Math.ceil((geometry.initialBlocks * geometry.selectBlock) / smallBlock),
    localBlocks: Math.ceil((geometry.localBlocks * geometry.selectBlock) / smallBlock)
  }
  const small = planSelection({ shape, geometry: smallGeometry, phase, kernels, blockNs: [largeTile] }, device, rejected)
  const smallCost = priceSelectionForward(small.schedule, device)
  cases.push({
    name: `selection block ${smallBlock} < key tile ${largeTile}`,
    description:
      `${smallGeometry.selectCount} blocks of ${smallBlock} keys (the same keys per query), each run as one ${largeTile}-key tile: ` +
      `${largeTile - smallBlock} of every ${largeTile} MMA columns and exponentials are padding`,
    tiling: describeSelectionTiling(small.tiling),
    ...describe(smallCost),
    relativeTime: smallCost.seconds / blockwise.seconds,
    mmaRows: small.tiling.rows
  })

  return {
    phase,
    selectedKeysPerQuery: selectedKeys(geometry, shape.seqLenKV - 1),
    assumptions: [
      `Scattered runs lose about ${scatteredRunOverheadTransactions} HBM transactions of bandwidth each (row activation, bank turnaround): an assumption, not a measured figure. Contiguous blocks and dense tiles stream at the profile's achievable HBM bandwidth.`,
      "Token-level selection keeps the blockwise kernel's L2 hit rate; its extra cost is the rounding of each row to whole transactions, the scattered-access efficiency and the index reads. The SM-side cost of generating one address per row instead of one bulk copy per tile is not priced.",
      "Per-head selection is priced with disjoint choices across the group's heads (the upper bound on bytes); if all heads agreed, its HBM bytes would fall to the blockwise kernel's, but its L2 loads and MMA padding would not.",
      "Each case is planned on its own (tile, stages, split-KV), so a case may pick another tiling than the blockwise kernel."
    ],
    cases
  }
}

function describe(cost: KernelCost, hbmBytes = cost.counts.bytes.hbm): Omit<AlignmentCase, "name" | "description" | "tiling" | "relativeTime" | "mmaRows"> {
  return {
    seconds: cost.seconds,
    bytes: { hbm: hbmBytes, l2: cost.counts.bytes.l2 },
    tensorFlops: cost.counts.tensorFlops,
    usefulFlops: cost.counts.usefulFlops,
    bound: cost.bound
  }
}

const roundUp = (bytes: number, unit: number): number => Math.ceil(bytes / unit) * unit

/**
 * Contrast (b): the blockwise kernel's tiles, with each key's K row and V row
 * fetched as separate runs. L2 traffic rounds each run up to L2 sectors; HBM
 * traffic rounds it up to HBM transactions and is priced at the scattered
 * efficiency (extra bytes in the time model, real bytes in the report).
 */
function tokenLevel(selection: SelectionPlan, device: DeviceRates): { cost: KernelCost; hbmBytes: number; efficiency: number } {
  const { schedule } = selection
  const { shape, geometry, tiling } = schedule
  const s = bytesPerElement(shape)
  const runs = [shape.headDim * s, shape.headDimV * s]
  const tokenBytes = runs.reduce((sum, run) => sum + run, 0)
  const l2PerToken = runs.reduce((sum, run) => sum + roundUp(run, device.l2TransactionBytes), 0)
  const hbmPerToken = runs.reduce((sum, run) => sum + roundUp(run, device.hbmTransactionBytes), 0)
  const overhead = scatteredRunOverheadTransactions * device.hbmTransactionBytes
  const efficiency = hbmPerToken / (hbmPerToken + runs.length * overhead)
  const keysPerItem = geometry.selectCount * geometry.selectBlock

  const parts = selectionForwardParts(schedule, device)
  const classes = parts.classes.map((c) => {
    const item = c.representative
    const keys = schedule.summary(item.position, item.split, tiling.splits).keys
    const extraL2 = keys * (l2PerToken - tokenBytes) + ((keysPerItem - geometry.selectCount) * 4) / tiling.splits
    return { ...c, counts: { ...c.counts, bytes: { ...c.counts.bytes, l2: c.counts.bytes.l2 + extraL2 } } }
  })
  const indexBytes = shape.batch * shape.kvHeads * shape.seqLenQ * (keysPerItem - geometry.selectCount) * 4
  const kvHbm = (parts.kv.hbm / tokenBytes) * hbmPerToken
  const hbmBytes = kvHbm + parts.otherHbmBytes + indexBytes
  const cost = priceKernel(
    classKernel({
      name: "selected-forward (token-level)",
      classes: classes.map(({ count, counts, prologueBytes, epilogueBytes }) => ({ count, counts, prologueBytes, epilogueBytes })),
      hbmBytes: kvHbm / efficiency + parts.otherHbmBytes + indexBytes,
      ctasPerSm: tiling.ctasPerSm,
      generation: tiling.kernel,
      softmaxOverlap: tiling.softmaxOverlap
    }),
    device
  )
  // Report the bytes that move, not the efficiency-inflated figure the time model used.
  return { cost: { ...cost, counts: { ...cost.counts, bytes: { ...cost.counts.bytes, hbm: hbmBytes } } }, hbmBytes, efficiency }
}
