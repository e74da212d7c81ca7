import { combineKernels, priceKernel, type KernelSpec } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape } from "../../workload/shape.js"
import { l2ResidentFraction } from "../dense/cost.js"
import { vectorFlopsPerScore } from "../dense/generations.js"
import { bytesPerElement } from "../dense/schedule.js"
import { historyUnion, keysAttended, queryBlocks, queryPosition } from "./blocks.js"
import { describe } from "./history-cost.js"
import type { MobaConfig } from "./options.js"
import { planMoba, roleSeconds, type MobaPlan, type MobaRequest } from "./plan.js"

/**
 * Hardware-alignment contrasts at the same keys per query: what MoBA's block
 * granularity and per-head selection cost or save on the device. Each entry
 * gives the whole operation's time, its attention part, bytes and bound.
 */

/** Block size of the small-block contrast: below the smallest key tile (32) any kernel could pick. */
export const smallBlockSize = 16

/**
 * Share of achievable HBM and L2 bandwidth that scattered row gathers sustain.
 * An assumption, not a measurement: each warp issues independent row-sized
 * requests, with far less memory-level parallelism than streaming tiles.
 */
export const gatherEfficiency = 0.5

export interface AlignmentEntry {
  readonly selection: string
  readonly blockSize: number
  readonly topK: number
  readonly keysPerQuery: number
  readonly seconds: number
  readonly attentionSeconds: number
  readonly gatingSeconds: number
  readonly bytes: { readonly hbm: number; readonly l2: number }
  readonly bound: string
  readonly attentionBound: string
  readonly historyTiling?: string | undefined
  readonly assumption: string
}

export function summarizePlan(plan: MobaPlan, selection: string, assumption: string): AlignmentEntry {
  const attention = plan.cost.kernels.filter((k) => plan.roles.get(k.name) === "attention")
  const last = queryPosition(plan.request.shape, plan.request.shape.seqLenQ - 1)
  return {
    selection,
    blockSize: plan.config.blockSize,
    topK: plan.config.topK,
    keysPerQuery: keysAttended(last, plan.config),
    seconds: plan.cost.seconds,
    attentionSeconds: roleSeconds(plan, "attention"),
    gatingSeconds: roleSeconds(plan, "gating"),
    bytes: { hbm: plan.cost.counts.bytes.hbm, l2: plan.cost.counts.bytes.l2 },
    bound: plan.cost.bound,
    attentionBound: attention.length > 0 ? combineKernels(attention).bound : plan.cost.bound,
    historyTiling: plan.history ? describe(plan.history.tiling) : undefined,
    assumption
  }
}

export interface Alignment {
  readonly perHeadUnion: AlignmentEntry
  readonly groupShared: AlignmentEntry
  readonly smallBlock: AlignmentEntry | { readonly skipped: string }
  readonly tokenLevel: AlignmentEntry
}

/** Price the four contrasts for a planned request. */
export function alignmentContrasts(main: MobaPlan, device: DeviceRates): Alignment {
  const { request, config } = main
  const perHeadUnion = summarizePlan(
    main,
    "per-head (MoBA)",
    "each query head selects its own blocks; a KV head's blocks are the union over its group, read from HBM once per union block and from L2 once per (head, block)"
  )

  const shared = planMoba(request, config, device, "group-shared")
  const groupShared = summarizePlan(
    shared,
    "group-shared (hypothetical)",
    "the G heads of a group share one selection (as NSA's selection does), so one CTA per (KV head, block) carries all G heads' queries and a KV head reads k blocks"
  )

  const smallBlock = smallBlockContrast(main, device)
  const tokenLevel = tokenLevelContrast(main, device)
  return { perHeadUnion, groupShared, smallBlock, tokenLevel }
}

function smallBlockContrast(main: MobaPlan, device: DeviceRates): AlignmentEntry | { skipped: string } {
  const { request, config } = main
  if (config.blockSize <= smallBlockSize) return { skipped: `the block (${config.blockSize} keys) is already at most ${smallBlockSize} keys` }
  const topK = Math.max(1, Math.round((config.topK * config.blockSize) / smallBlockSize))
  const small: MobaConfig = { ...config, blockSize: smallBlockSize, topK, blocks: Math.ceil(request.shape.seqLenKV / smallBlockSize) }
  const plan = planMoba(request, small, device)
  return summarizePlan(
    plan,
    `block ${smallBlockSize} keys, top-${topK}`,
    `the same keys per query in blocks of ${smallBlockSize} keys, below every key tile the kernels use (32 to 256 keys): each selected block fills a whole key tile of MMA work, and the gate scores ${small.blocks} blocks per query`
  )
}

/**
 * Token-level selection at the same keys per query: every query row gathers its
 * own keys, so no key tile is shared between the rows of a CTA and the products
 * run as FP32 dot products on the CUDA cores. Each gathered key and value row
 * is its own memory request, rounded up to whole L2 sectors and HBM bursts.
 * Prefill: a gathered row hits L2 in proportion to the share of the KV heads in
 * flight whose K/V fits in its resident part. Decode: a KV head reads the
 * union of its G heads' keys under the same overlap model as blocks. Priced on
 * the device with HBM and L2 bandwidth scaled by gatherEfficiency. The gate
 * is taken as MoBA's; a real token-level selector needs per-key scores.
 */
function tokenLevelContrast(main: MobaPlan, device: DeviceRates): AlignmentEntry {
  const { request, config } = main
  const { shape, phase } = request
  const spec = tokenLevelKernel(request, config, device)
  const scaled: DeviceRates = { ...device, hbmBytesPerSecond: device.hbmBytesPerSecond * gatherEfficiency, l2BytesPerSecond: device.l2BytesPerSecond * gatherEfficiency }
  const attention = priceKernel(spec, scaled)
  const gating = main.cost.kernels.filter((k) => main.roles.get(k.name) === "gating")
  const total = combineKernels([...gating, attention])
  const last = queryPosition(shape, shape.seqLenQ - 1)
  return {
    selection: "token-level (hypothetical)",
    blockSize: 1,
    topK: keysAttended(last, config),
    keysPerQuery: keysAttended(last, config),
    seconds: total.seconds,
    attentionSeconds: attention.seconds,
    gatingSeconds: roleSeconds(main, "gating"),
    bytes: { hbm: total.counts.bytes.hbm, l2: total.counts.bytes.l2 },
    bound: total.bound,
    attentionBound: attention.bound,
    assumption:
      `each query gathers its own ${keysAttended(last, config)} keys: FP32 dot products on CUDA cores, ` +
      `K and V rows rounded to ${device.l2TransactionBytes}-byte L2 sectors and ${device.hbmTransactionBytes}-byte HBM bursts, ` +
      `gathers at ${gatherEfficiency} of achievable bandwidth (assumed)${phase === "decode" ? "" : ", L2 hits only for the K/V share that fits in L2"}`
  }
}

const roundUp = (bytes: number, unit: number): number => Math.ceil(bytes / unit) * unit

function tokenLevelKernel(request: MobaRequest, config: MobaConfig, device: DeviceRates): KernelSpec {
  const { shape, phase } = request
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const group = shape.heads / shape.kvHeads
  const pairsPerHead = attendedPairs(shape, config)
  const keysPerRow = pairsPerHead / shape.seqLenQ
  const rowsPerCta = Math.min(64, shape.seqLenQ)
  const ctas = shape.batch * shape.heads * Math.ceil(shape.seqLenQ / rowsPerCta)
  const ctasPerSm = 4

  const l2Row = roundUp(dk * s, device.l2TransactionBytes) + roundUp(dv * s, device.l2TransactionBytes)
  const hbmRow = roundUp(dk * s, device.hbmTransactionBytes) + roundUp(dv * s, device.hbmTransactionBytes)
  const gathers = shape.batch * shape.heads * pairsPerHead
  const ends = shape.batch * shape.heads * shape.seqLenQ * (dk + dv) * s

  let kvHbm: number
  if (phase === "decode") {
    const visible = shape.seqLenKV
    kvHbm = shape.batch * shape.kvHeads * historyUnion(visible, Math.min(visible, keysPerRow), group, config.overlap) * hbmRow
  } else {
    const kvBytesPerHead = shape.seqLenKV * (dk + dv) * s
    const itemsPerKvHead = group * Math.ceil(shape.seqLenQ / rowsPerCta)
    const kvHeadsInFlight = Math.max(1, (device.sms * ctasPerSm) / itemsPerKvHead)
    const hit = Math.min(1, (l2ResidentFraction * device.l2Capacity) / (kvHeadsInFlight * kvBytesPerHead))
    const unique = shape.batch * shape.kvHeads * shape.seqLenKV * hbmRow
    kvHbm = Math.max(unique, (1 - hit) * gathers * hbmRow)
  }

  const perCta = (value: number): number => value / ctas
  return {
    name: "token-level attention",
    classes: [
      {
        count: ctas,
        counts: {
          tensorFlops: 0,
          usefulFlops: perCta(2 * (dk + dv) * gathers),
          expOps: perCta(gathers),
          vectorFlops: perCta(gathers * (2 * (dk + dv) + vectorFlopsPerScore.forward)),
          bytes: { hbm: perCta(kvHbm + ends), l2: perCta(gathers * l2Row + ends), smem: 0 }
        },
        prologueBytes: rowsPerCta * dk * s,
        epilogueBytes: rowsPerCta * dv * s
      }
    ],
    ctasPerSm,
    mma: "sync",
    softmaxOverlap: 0,
    latencyHidden: 0.75
  }
}

/** (query, key) pairs one head attends: each query's current-block prefix plus its whole history blocks. */
export function attendedPairs(shape: AttentionShape, config: Pick<MobaConfig, "blockSize" | "topK">): number {
  let pairs = 0
  for (const { block, queryStart, queryEnd } of queryBlocks(shape, config.blockSize)) {
    const queries = queryEnd - queryStart
    const first = queryStart - block * config.blockSize + 1
    const last = queryEnd - 1 - block * config.blockSize + 1
    pairs += (queries * (first + last)) / 2 + queries * Math.min(config.topK - 1, block) * config.blockSize
  }
  return pairs
}
