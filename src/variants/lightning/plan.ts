import type { CostBreakdown } from "../../cost/breakdown.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { bytesPerElement } from "../dense/schedule.js"
import type { KernelGeneration } from "../dense/generations.js"
import { PlanError, tieTolerance } from "../dense/plan.js"
import type { Rejection } from "../variant.js"
import { priceLightning } from "./cost.js"
import type { LightningSettings } from "./options.js"
import { LightningSchedule } from "./schedule.js"
import {
  backwardFootprint,
  blockFootprint,
  describeTiling,
  interFootprint,
  residency,
  streamingFootprint,
  type BlockGeometry,
  type DecodeTiling,
  type FusedTiling,
  type LightningTiling,
  type MmaPath,
  type SplitTiling
} from "./tiling.js"

export interface LightningRequest {
  readonly shape: AttentionShape
  readonly phase: Phase
  /** fa2 prices warp-synchronous MMA, fa3 warpgroup MMA; undefined takes the device's best. */
  readonly kernel?: KernelGeneration | undefined
  readonly settings: LightningSettings
}

export interface LightningPlan {
  readonly request: LightningRequest
  readonly tiling: LightningTiling
  readonly schedule: LightningSchedule
  readonly cost: CostBreakdown
  readonly rejected: ReadonlyArray<Rejection>
  readonly considered: number
}

const valueSplitChoices = [1, 2, 4, 8]
const decodeValueSplitChoices = [1, 2, 4, 8, 16, 32]
const stateSplitChoices = [1, 2, 4, 8, 16, 32, 64]
const consumerGroupChoices = [1, 2]

/**
 * Enumerate legal tilings of the allowed layouts, price each and keep the
 * fastest. Among tilings within tieTolerance of it, the one with the least
 * memory time wins, as in the dense planner. Training prices forward and
 * backward of the same layout together. One-token decode has a layout of its own.
 */
export function planLightning(request: LightningRequest, device: DeviceRates): LightningPlan {
  const rejected: Rejection[] = []
  const candidates = request.phase === "decode" && request.shape.seqLenQ === 1 ? decodeTilings(request, device, rejected) : blockTilings(request, device, rejected)

  let best: { tiling: LightningTiling; schedule: LightningSchedule; cost: CostBreakdown } | undefined
  const priced = candidates.map((tiling) => {
    const schedule = new LightningSchedule({ shape: request.shape, phase: request.phase, settings: request.settings, tiling })
    return { tiling, schedule, cost: priceLightning(schedule, device) }
  })
  const fastest = priced.reduce((min, c) => Math.min(min, c.cost.seconds), Number.POSITIVE_INFINITY)
  for (const candidate of priced) {
    if (candidate.cost.seconds > fastest * (1 + tieTolerance)) continue
    if (!best || memorySeconds(candidate.cost) < memorySeconds(best.cost)) best = candidate
  }
  if (!best) {
    const reasons = [...new Set(rejected.map((r) => r.reason))].slice(0, 3).join("; ")
    throw new PlanError({ variant: "lightning", device: device.profileId, reason: `no tiling fits (${reasons || "no layout allowed"})` })
  }
  return { request, tiling: best.tiling, schedule: best.schedule, cost: best.cost, rejected, considered: candidates.length }
}

const memorySeconds = (cost: CostBreakdown): number => cost.resourceSeconds.hbm + cost.resourceSeconds.l2 + cost.resourceSeconds.smem

function mmaPath(request: LightningRequest, device: DeviceRates): MmaPath {
  if (request.kernel === "fa3" && !device.asyncMma) {
    throw new PlanError({
      variant: "lightning",
      device: device.profileId,
      reason: "kernel fa3 needs warpgroup-level asynchronous MMA (Hopper or later); use --kernel fa2"
    })
  }
  if (request.kernel) return request.kernel === "fa3" ? "async" : "sync"
  return device.asyncMma ? "async" : "sync"
}

function decodeTilings(request: LightningRequest, device: DeviceRates, rejected: Rejection[]): DecodeTiling[] {
  const ctasPerSm = residency(streamingFootprint, device)
  const tilings: DecodeTiling[] = []
  for (const valueSplits of decodeValueSplitChoices) {
    const tiling: DecodeTiling = { scheme: "decode", valueSplits, ctasPerSm: typeof ctasPerSm === "number" ? ctasPerSm : 0 }
    if (request.shape.headDimV % valueSplits !== 0) {
      rejected.push({ tiling: describeTiling(tiling), reason: `value head dim ${request.shape.headDimV} does not split into ${valueSplits} equal slices` })
    } else if (typeof ctasPerSm === "string") {
      rejected.push({ tiling: describeTiling(tiling), reason: ctasPerSm })
    } else {
      tilings.push(tiling)
    }
  }
  return tilings
}

function blockTilings(request: LightningRequest, device: DeviceRates, rejected: Rejection[]): LightningTiling[] {
  const { scheme } = request.settings
  const mma = mmaPath(request, device)
  const tilings: LightningTiling[] = []
  if (scheme !== "split") tilings.push(...fusedTilings(request, device, mma, rejected))
  if (scheme !== "fused") tilings.push(...splitTilings(request, device, mma, rejected))
  return tilings
}

function geometry(request: LightningRequest, mma: MmaPath, consumerGroups: number, valueWidth: number, streamKeys = false): BlockGeometry {
  const { shape, settings } = request
  return { blockSize: settings.blockSize, headDim: shape.headDim, valueWidth, elementBytes: bytesPerElement(shape), consumerGroups, streamKeys, mma }
}

/** Backward CTAs per SM when training, 1 otherwise (no backward launch to fit). */
function backwardResidency(request: LightningRequest, device: DeviceRates, mma: MmaPath): number | string {
  if (request.phase !== "train") return 1
  return residency(backwardFootprint(geometry(request, mma, 2, request.shape.headDimV)), device)
}

function fusedTilings(request: LightningRequest, device: DeviceRates, mma: MmaPath, rejected: Rejection[]): FusedTiling[] {
  const { shape, settings } = request
  const tilings: FusedTiling[] = []
  const backward = backwardResidency(request, device, mma)
  for (const valueSplits of valueSplitChoices) {
    for (const consumerGroups of consumerGroupChoices) {
      for (const streamKeys of [false, true]) {
        const base = { scheme: "fused" as const, mma, blockSize: settings.blockSize, valueSplits, consumerGroups, streamKeys, ctasPerSm: 0, backwardCtasPerSm: 0 }
        const description = describeTiling(base)
        const valueWidth = shape.headDimV / valueSplits
        if (!Number.isInteger(valueWidth) || valueWidth < 16) {
          rejected.push({ tiling: description, reason: `value head dim ${shape.headDimV} does not split into ${valueSplits} slices of at least 16 columns` })
          continue
        }
        const fit = residency(blockFootprint(geometry(request, mma, consumerGroups, valueWidth, streamKeys)), device)
        if (typeof fit === "string") {
          rejected.push({ tiling: description, reason: fit })
          continue
        }
        if (typeof backward === "string") {
          rejected.push({ tiling: description, reason: `backward walk ${backward}` })
          continue
        }
        tilings.push({ ...base, ctasPerSm: fit, backwardCtasPerSm: backward })
      }
    }
  }
  return tilings
}

function splitTilings(request: LightningRequest, device: DeviceRates, mma: MmaPath, rejected: Rejection[]): SplitTiling[] {
  const { shape, settings } = request
  const tilings: SplitTiling[] = []
  const scan = residency(streamingFootprint, device)
  const backward = backwardResidency(request, device, mma)
  const stateEntries = shape.headDim * shape.headDimV
  for (const consumerGroups of consumerGroupChoices) {
    for (const streamKeys of [false, true]) {
      const base = {
        scheme: "split" as const,
        mma,
        blockSize: settings.blockSize,
        consumerGroups,
        streamKeys,
        stateSplits: 1,
        intraCtasPerSm: 0,
        interCtasPerSm: 0,
        scanCtasPerSm: 0,
        backwardCtasPerSm: 0
      }
      const shapeOf = geometry(request, mma, consumerGroups, shape.headDimV, streamKeys)
      const intra = residency(blockFootprint(shapeOf), device)
      const inter = residency(interFootprint(shapeOf), device)
      const reason = [intra, inter, scan].find((fit): fit is string => typeof fit === "string") ?? (typeof backward === "string" ? `backward ${backward}` : undefined)
      if (reason !== undefined) {
        rejected.push({ tiling: describeTiling(base), reason })
        continue
      }
      for (const stateSplits of stateSplitChoices) {
        if (stateEntries % stateSplits !== 0) continue
        tilings.push({
          ...base,
          stateSplits,
          intraCtasPerSm: intra as number,
          interCtasPerSm: inter as number,
          scanCtasPerSm: scan as number,
          backwardCtasPerSm: backward as number
        })
      }
    }
  }
  return tilings
}
