import { runAttentionTile } from "./attention-step.js"
import { runLightningTile } from "./lightning-step.js"
import { runMobaGating } from "../variants/moba/gating-run.js"
import type { TileResult, TileTask } from "./task.js"

/**
 * Worker-side handlers, one per task kind. A variant with kernels of its own
 * adds its task type to TileTask in task.ts and its handler here.
 */
export const handlers: { readonly [K in TileTask["kind"]]: (task: Extract<TileTask, { kind: K }>) => TileResult } = {
  "attention-forward": runAttentionTile,
  "lightning-forward": runLightningTile,
  "moba-gating": runMobaGating
}
