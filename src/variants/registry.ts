import { NotFoundError } from "../errors.js"
import { denseVariant } from "./dense/index.js"
import { lightningVariant } from "./lightning/index.js"
import { mlaVariant } from "./mla/index.js"
import { mobaVariant } from "./moba/index.js"
import { nsaVariant } from "./nsa/index.js"
import type { VariantId, VariantModule } from "./variant.js"

/** Every registered variant. A new variant is one folder plus one line here. */
export const variants: ReadonlyArray<VariantModule<any>> = [denseVariant, mlaVariant, lightningVariant, nsaVariant, mobaVariant]

export function variantModule(id: string): VariantModule<any> {
  const found = variants.find((variant) => variant.id === id)
  if (!found) throw new NotFoundError({ kind: "attention variant", id, known: variants.map((v) => v.id) })
  return found
}

export const variantIds = (): ReadonlyArray<VariantId> => variants.map((variant) => variant.id)
