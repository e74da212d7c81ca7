import { fitGenerationParameters, storedParameters } from "../src/validate/fit.js"

// Prints the kernel-generation parameters fitted to the published points marked
// in fixtures/published/, next to the values stored in src/variants/dense/generations.ts.
for (const parameter of fitGenerationParameters()) {
  const stored = storedParameters[parameter.name]
  const note = parameter.clamped ? " (clamped at the range bound)" : ""
  console.log(
    `${parameter.name} = ${parameter.value}${note}; stored ${stored}; ` +
      `${parameter.series}: measured ${parameter.measuredTflops} TFLOP/s, predicted ${parameter.predictedTflops.toFixed(1)}`
  )
}
