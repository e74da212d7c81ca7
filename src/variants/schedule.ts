import type { WorkCounts } from "../cost/counts.js"

/**
 * A tile schedule: the plan expanded into work items (one per CTA). It maps an
 * item index to the item's coordinates and nothing else; pricing reads the same
 * items through `classes` and `counts`, execution through `item` and `steps`.
 */
export interface Schedule<Item> {
  /** Number of work items across all kernels of the operation. */
  readonly size: number
  item(index: number): Item
  /** Items grouped by identical work; `count` items like `representative`. */
  readonly classes: ReadonlyArray<ItemClass<Item>>
  /** Counted work of one item. `bytes.hbm` is 0 here: L2 reuse is a whole-kernel model. */
  counts(item: Item): WorkCounts
}

export interface ItemClass<Item> {
  readonly kernel: string
  readonly count: number
  readonly representative: Item
  readonly counts: WorkCounts
}
