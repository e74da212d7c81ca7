import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { TilePool, tilePoolLayer } from "../../src/exec/pool.js"
import type { AttentionTileResult } from "../../src/exec/task.js"
import { makeTask } from "./helpers.js"

// The pool runs the compiled worker in dist/: `npm test` builds before vitest runs.
describe("tile pool", () => {
  it.effect("runs a task in a worker", () =>
    Effect.gen(function* () {
      const pool = yield* TilePool
      const task = makeTask({ rows: 8, blockN: 8, headDim: 16, headDimV: 16, steps: 2, visible: () => ({ lo: 0, hi: 16 }) })

      const result = yield* pool.run(task)

      assert.strictEqual(pool.workers, 2)
      assert.strictEqual(result.backend, "webasm")
      assert.strictEqual(result.counted.steps, 2)
      assert.strictEqual((result as AttentionTileResult).kernelState.acc.length, 8 * 16)
    }).pipe(Effect.provide(tilePoolLayer({ workers: 2 })))
  )

  it.effect("moves task buffers", () =>
    Effect.gen(function* () {
      const pool = yield* TilePool
      const task = makeTask({ rows: 8, blockN: 8, headDim: 16, headDimV: 16, steps: 1, visible: () => ({ lo: 0, hi: 8 }) })

      yield* pool.run(task)

      // A transferred buffer is detached on the sending side.
      assert.strictEqual(task.q.byteLength, 0)
      assert.strictEqual(task.k.byteLength, 0)
    }).pipe(Effect.provide(tilePoolLayer({ workers: 1 })))
  )

  it.effect("failing task gives TileExecutionError", () =>
    Effect.gen(function* () {
      const pool = yield* TilePool
      const task = { ...makeTask({ rows: 8, blockN: 8, headDim: 16, headDimV: 16, steps: 1, visible: () => ({ lo: 0, hi: 8 }) }), kind: "no-such-kind" }

      const exit = yield* Effect.exit(pool.run(task as never))

      assert.isTrue(Exit.isFailure(exit))
      const failure = Exit.isFailure(exit) ? exit.cause : undefined
      assert.include(String(failure), "unknown tile task kind")
    }).pipe(Effect.provide(tilePoolLayer({ workers: 1 })))
  )

  it.effect("closes when the scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(tilePoolLayer({ workers: 1 }), scope)
      const pool = Context.get(context, TilePool)
      const task = () => makeTask({ rows: 8, blockN: 8, headDim: 16, headDimV: 16, steps: 1, visible: () => ({ lo: 0, hi: 8 }) })
      yield* pool.run(task())

      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.exit(pool.run(task()))

      assert.isTrue(Exit.isFailure(after))
    })
  )
})
