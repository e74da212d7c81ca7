import type { Schema } from "effect"
import type { CostBreakdown } from "../cost/breakdown.js"
import type { Backend } from "../exec/task.js"
import type { ExecUnit } from "../exec/unit.js"
import type { DeviceRates } from "../hardware/device.js"
import type { AttentionShape, Phase } from "../workload/shape.js"
import type { KernelGeneration } from "./dense/generations.js"

export type VariantId = "dense" | "nsa" | "moba" | "lightning" | "mla"

/** One attention operation to price: a variant with its options, a shape, a phase. */
export interface OperationRequest<Options = Record<string, unknown>> {
  readonly variant: VariantId
  readonly shape: AttentionShape
  readonly phase: Phase
  /** Kernel generation for softmax kernels; undefined tries every one the device supports. */
  readonly kernel?: KernelGeneration | undefined
  /** The variant's options, decoded by its schema (defaults filled in). */
  readonly options: Options
}

export interface SampleOptions {
  readonly seed: number
  /** Most kernel steps (tiles) to execute across all units. */
  readonly budgetSteps: number
  /** Work items with at most this many steps may be executed whole. */
  readonly wholeItemMaxSteps: number
  readonly backend: Backend
  /**
   * Let workers generate tile data from coordinates (AttentionTileTask.fill)
   * instead of carrying it; a variant whose data the worker cannot generate
   * ignores this. Absent means false.
   */
  readonly dataInWorker?: boolean | undefined
}

/** A tiling or configuration the planner did not keep, and why. */
export interface Rejection {
  readonly tiling: string
  readonly reason: string
}

/** A planned and priced operation. */
export interface VariantPlan {
  readonly cost: CostBreakdown
  readonly tilingDescription: string
  readonly tiling: Readonly<Record<string, unknown>>
  readonly considered: number
  readonly rejected: ReadonlyArray<Rejection>
  /**
   * Variant-specific results, merged into the estimate JSON: keysPerQuery,
   * branches, sparsity, alignment contrasts, notes. Plain JSON values only.
   */
  readonly details: Readonly<Record<string, unknown>>
  /** A seeded, representative sample of this plan's tiles as executable units. */
  sample(options: SampleOptions): ReadonlyArray<ExecUnit>
  /**
   * Every executable work item of the schedule, each run whole from a fresh
   * state, for validating small cases in full (and checking extrapolation from
   * samples). Undefined where the variant cannot run its whole schedule.
   */
  fullUnits?(options: Omit<SampleOptions, "budgetSteps" | "wholeItemMaxSteps">): ReadonlyArray<ExecUnit>
  /**
   * This plan re-priced with what executing its sample measured
   * (ExecutionCheck.measured); undefined where nothing measured changes it.
   */
  withMeasurements?(measured: Readonly<Record<string, number>>): VariantPlan
}

/**
 * An attention variant: one folder under src/variants/ that implements this and
 * is registered in registry.ts. `options` decodes the variant's parameters from
 * a scenario or from CLI flags; `flags` maps CLI flag names to option keys.
 */
export interface VariantModule<Options = Record<string, unknown>> {
  readonly id: VariantId
  readonly description: string
  readonly options: Schema.Schema<Options, any>
  readonly flags: ReadonlyArray<VariantFlag>
  plan(request: OperationRequest<Options>, device: DeviceRates): VariantPlan
}

/** A CLI flag that sets one variant option. */
export interface VariantFlag {
  readonly flag: string
  readonly key: string
  readonly describe: string
  readonly type: "integer" | "number" | "string" | "boolean"
}
