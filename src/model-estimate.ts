import { decodeVariantOptions, planOperation, type PlannedOperation } from "./estimate.js"
import type { HardwareProfile } from "./hardware/profile-schema.js"
import type { KernelGeneration } from "./variants/dense/generations.js"
import type { VariantId } from "./variants/variant.js"
import { layerMemory, sequenceBytes } from "./workload/memory.js"
import type { LayerGroup, ModelSpec } from "./workload/model.js"
import type { AttentionShape, Phase } from "./workload/shape.js"
import type { Dtype } from "./hardware/profile-schema.js"

export interface ModelRequest {
  readonly model: ModelSpec
  readonly phase: Phase
  /** Keys per sequence (for decode: the cache length). */
  readonly seqLen: number
  readonly queryLen?: number | undefined
  readonly batch: number
  readonly dtype: Dtype
  readonly kernel?: KernelGeneration | undefined
}

export interface LayerRow {
  readonly layer: number
  readonly variant: VariantId
  readonly heads: number
  readonly kvHeads: number
  readonly headDim: number
  readonly headDimV: number
  readonly options: Readonly<Record<string, unknown>>
  readonly seconds: number
  readonly bound: string
  readonly keysPerQuery?: unknown
  readonly kvCacheBytesPerToken: number
  readonly stateBytesPerSequence: number
}

export interface ModelEstimate {
  readonly model: string
  readonly name: string
  readonly source: string
  readonly hardware: string
  readonly phase: Phase
  readonly seqLen: number
  readonly queryLen: number
  readonly batch: number
  readonly dtype: Dtype
  /** Attention time of all layers together. */
  readonly seconds: number
  /** Cache bytes per token of context, summed over the layers whose cache grows with context. */
  readonly kvCacheBytesPerToken: number
  /** Constant state bytes per sequence, summed over the linear-attention layers. */
  readonly stateBytesPerSequence: number
  /** (kvCacheBytesPerToken × seqLen + stateBytesPerSequence) × batch, with window states counting only the keys a sequence fills. */
  readonly memoryBytes: number
  readonly hbmCapacityBytes: number
  /** Whether memoryBytes fits in one GPU's HBM; model weights and activations are not counted. */
  readonly fitsInHbm: boolean
  /** Minimum GPUs whose HBM together fits memoryBytes (weights not counted). */
  readonly minimumGpusForCache: number
  readonly secondsByVariant: Readonly<Record<string, number>>
  readonly layers: ReadonlyArray<LayerRow>
}

/** Price every layer of a model (each distinct layer kind once) and account its memory. */
export function estimateModel(request: ModelRequest, profile: HardwareProfile): ModelEstimate {
  const { model, phase, seqLen, batch, dtype } = request
  const queryLen = request.queryLen ?? (phase === "decode" ? 1 : seqLen)
  const priced = new Map<string, { operation: PlannedOperation; group: LayerGroup; options: Record<string, unknown> }>()

  const layers: LayerRow[] = []
  let index = 0
  for (const [groupIndex, group] of model.layers.entries()) {
    const key = JSON.stringify({ ...group, count: 0 })
    let entry = priced.get(key)
    if (!entry) {
      const origin = `${model.id}: layers.${groupIndex}.options`
      const options = decodeVariantOptions(group.variant, group.options, origin)
      const shape: AttentionShape = {
        batch,
        heads: group.heads,
        kvHeads: group.kvHeads,
        headDim: group.headDim,
        headDimV: group.headDimV ?? group.headDim,
        seqLenQ: queryLen,
        seqLenKV: seqLen,
        causal: true,
        dtype
      }
      const operation = planOperation({ variant: group.variant, shape, phase, kernel: request.kernel, options }, profile, origin)
      entry = { operation, group, options }
      priced.set(key, entry)
    }
    const memory = layerMemory(group.variant, { heads: group.heads, kvHeads: group.kvHeads, headDim: group.headDim, headDimV: group.headDimV ?? group.headDim }, entry.options, dtype)
    for (let repeat = 0; repeat < group.count; repeat++) {
      layers.push({
        layer: index++,
        variant: group.variant,
        heads: group.heads,
        kvHeads: group.kvHeads,
        headDim: group.headDim,
        headDimV: group.headDimV ?? group.headDim,
        options: entry.options,
        seconds: entry.operation.estimate.seconds,
        bound: entry.operation.estimate.bound,
        keysPerQuery: entry.operation.estimate.keysPerQuery,
        ...memory
      })
    }
  }

  const kvCacheBytesPerToken = layers.reduce((sum, layer) => sum + layer.kvCacheBytesPerToken, 0)
  const stateBytesPerSequence = layers.reduce((sum, layer) => sum + layer.stateBytesPerSequence, 0)
  const secondsByVariant: Record<string, number> = {}
  for (const layer of layers) secondsByVariant[layer.variant] = (secondsByVariant[layer.variant] ?? 0) + layer.seconds

  const memoryBytes = layers.reduce((sum, layer) => sum + sequenceBytes(layer, seqLen), 0) * batch
  const hbmCapacityBytes = profile.memory.hbm.capacity.value
  return {
    model: model.id,
    name: model.name,
    source: model.source,
    hardware: profile.id,
    phase,
    seqLen,
    queryLen,
    batch,
    dtype,
    seconds: layers.reduce((sum, layer) => sum + layer.seconds, 0),
    kvCacheBytesPerToken,
    stateBytesPerSequence,
    memoryBytes,
    hbmCapacityBytes,
    fitsInHbm: memoryBytes <= hbmCapacityBytes,
    minimumGpusForCache: Math.ceil(memoryBytes / hbmCapacityBytes),
    secondsByVariant,
    layers
  }
}
