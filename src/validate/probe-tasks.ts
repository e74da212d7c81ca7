import { seededRandom } from "../exec/data.js"
import type { LightningLayout, LightningTileTask } from "../exec/lightning-task.js"
import type { AttentionTileTask, Backend, TileTask } from "../exec/task.js"
import type { MobaGatingTask } from "../variants/moba/gating-task.js"

/**
 * Tile tasks built for calibration: every kind of task the variants run, over
 * a grid of tile shapes and step counts wide enough that each term of the
 * kind's time model (task-terms.ts) varies on its own. Values are seeded
 * uniform numbers; the kernels' work does not depend on them.
 */
export interface ProbeShape {
  readonly model: string
  /** Shape as text for the calibration's "fitted to" note. */
  readonly label: string
  /** Build the probe with `steps` key tiles or blocks. */
  build(steps: number, backend: Backend, serial: number): TileTask
  /** Tensor FLOPs of one step, to size the step counts. */
  readonly flopsPerStep: number
  /** Most steps a probe of this shape runs. */
  readonly maxSteps: number
}

const attentionDims: ReadonlyArray<readonly [number, number]> = [
  [64, 64],
  [128, 128],
  [192, 128],
  [576, 512]
]

/**
 * Softmax attention tiles: rows × blockN, head dims from 64 to MLA's 576/512.
 * Every other shape generates its data in the worker from fill coordinates, as
 * validation runs do, so the fill term is measured in place.
 */
export function attentionProbes(): ReadonlyArray<ProbeShape> {
  const shapes: ProbeShape[] = []
  for (const [dk, dv] of attentionDims) {
    for (const rows of [16, 64, 128]) {
      for (const blockN of [32, 64, 128]) {
        const fill = shapes.length % 2 === 1
        shapes.push({
          model: "attention-forward",
          label: `${rows}×${blockN} d${dk}/${dv}${fill ? " fill" : ""}`,
          flopsPerStep: 2 * rows * blockN * (dk + dv),
          maxSteps: 64,
          build: (steps, backend, serial) => attentionTask(rows, blockN, dk, dv, steps, backend, serial, fill)
        })
      }
    }
  }
  return shapes
}

/** Build probes of the fixed attention tile the machine's speed is tracked with: 64 × 64, head dim 128, data carried. */
export function referenceProbe(): ProbeShape {
  return {
    model: "attention-forward",
    label: "reference 64×64 d128/128",
    flopsPerStep: 2 * 64 * 64 * 256,
    maxSteps: 8,
    build: (steps, backend, serial) => attentionTask(64, 64, 128, 128, steps, backend, serial, false)
  }
}

function attentionTask(rows: number, blockN: number, dk: number, dv: number, steps: number, backend: Backend, serial: number, fill: boolean): AttentionTileTask {
  const random = seededRandom(serial + 1)
  const keys = steps * blockN
  const data = fill
    ? {
        q: new Float32Array(0),
        k: new Float32Array(0),
        v: new Float32Array(0),
        fill: { seed: serial + 1, dtype: "bf16" as const, batch: 0, kvHead: 0, queryHeads: new Float32Array(rows), queryPositions: Float32Array.from({ length: rows }, (_, r) => r) }
      }
    : { q: uniform(rows * dk, random), k: uniform(keys * dk, random), v: uniform(keys * dv, random) }
  return {
    kind: "attention-forward",
    id: `probe-attention-${serial}`,
    backend,
    rows,
    realRows: rows,
    blockN,
    headDim: dk,
    headDimV: dv,
    elementBytes: 2,
    scale: 1 / Math.sqrt(dk),
    stepStart: Float32Array.from({ length: steps }, (_, step) => step * blockN),
    stepKeys: new Float32Array(steps).fill(blockN),
    ...data,
    // Rows skip the first quarter of the first tile's keys, so the masking path runs too.
    rowLo: new Float32Array(rows).fill(Math.floor(blockN / 4)),
    rowHi: new Float32Array(rows).fill(keys),
    finalize: false,
    reference: false
  }
}

/** Lightning blocks (fused and split layouts) and decode steps. */
export function lightningProbes(): ReadonlyArray<ProbeShape> {
  const shapes: ProbeShape[] = []
  for (const layout of ["fused", "split"] as const) {
    for (const blockSize of [64, 128, 256]) {
      for (const [dk, e] of [
        [64, 64],
        [128, 128],
        [128, 32]
      ] as const) {
        shapes.push({
          model: "lightning-forward",
          label: `${layout} B${blockSize} d${dk}/${e}`,
          flopsPerStep: 2 * blockSize * blockSize * (dk + e) + 4 * blockSize * e * dk,
          maxSteps: 16,
          build: (steps, backend, serial) => lightningTask(layout, blockSize, dk, e, steps, backend, serial)
        })
      }
    }
  }
  for (const [dk, e] of [
    [64, 64],
    [128, 128],
    [128, 32]
  ] as const) {
    shapes.push({
      model: "lightning-decode",
      label: `decode d${dk}/${e}`,
      flopsPerStep: 4 * dk * e,
      maxSteps: 1,
      build: (_steps, backend, serial) => lightningTask("decode", 1, dk, e, 1, backend, serial)
    })
  }
  return shapes
}

function lightningTask(layout: LightningLayout, blockSize: number, dk: number, e: number, blocks: number, backend: Backend, serial: number): LightningTileTask {
  const random = seededRandom(serial + 1)
  const rows = blocks * blockSize
  return {
    kind: "lightning-forward",
    id: `probe-lightning-${serial}`,
    backend,
    layout,
    blockSize,
    headDim: dk,
    valueWidth: e,
    elementBytes: 2,
    stateDtype: "fp32",
    logDecay: -0.05,
    stepRows: new Float32Array(blocks).fill(blockSize),
    q: uniform(rows * dk, random),
    k: uniform(rows * dk, random),
    v: uniform(rows * e, random),
    state: uniform(dk * e, random),
    loadsState: layout === "decode",
    reference: false
  }
}

/** MoBA gate scoring: rows (a group's heads at some positions) against block means in steps of blockTile blocks. */
export function mobaGatingProbes(): ReadonlyArray<ProbeShape> {
  const shapes: ProbeShape[] = []
  for (const rows of [16, 64]) {
    for (const blockTile of [32, 64]) {
      for (const headDim of [64, 128]) {
        shapes.push({
          model: "moba-gating",
          label: `${rows}×${blockTile} d${headDim}`,
          flopsPerStep: 2 * rows * blockTile * headDim,
          // Gating covers one KV head's blocks, rarely more than a few tiles of them.
          maxSteps: 4,
          build: (steps, backend, serial) => mobaGatingTask(rows, blockTile, headDim, steps, backend, serial)
        })
      }
    }
  }
  return shapes
}

function mobaGatingTask(rows: number, blockTile: number, headDim: number, steps: number, backend: Backend, serial: number): MobaGatingTask {
  const random = seededRandom(serial + 1)
  const candidates = steps * blockTile
  const means = uniform(candidates * headDim, random)
  return {
    kind: "moba-gating",
    id: `probe-gating-${serial}`,
    backend,
    rows,
    realRows: rows,
    blockTile,
    headDim,
    elementBytes: 2,
    topK: 3,
    stepStart: Float32Array.from({ length: steps }, (_, step) => step * blockTile),
    stepBlocks: new Float32Array(steps).fill(blockTile),
    q: uniform(rows * headDim, random),
    means,
    meansReference: Float64Array.from(means),
    currentBlock: new Float32Array(rows).fill(candidates)
  }
}

function uniform(length: number, random: () => number): Float32Array {
  const values = new Float32Array(length)
  for (let i = 0; i < length; i++) values[i] = 2 * random() - 1
  return values
}
