import { HashMap, Layer, Logger, LogLevel } from "effect"

/**
 * Run logging: one line per event on stderr, so stdout stays clean for JSON.
 * "attnsim INFO run default started scenario=default rows=32"
 */
const stderrLogger = Logger.make(({ logLevel, message, annotations }) => {
  const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
  const fields = HashMap.toEntries(annotations)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ")
  process.stderr.write(`attnsim ${logLevel.label} ${text}${fields ? " " + fields : ""}\n`)
})

/** Logger layer: info and above, or debug and above with --verbose. */
export function loggingLayer(verbose: boolean): Layer.Layer<never> {
  return Layer.merge(Logger.replace(Logger.defaultLogger, stderrLogger), Logger.minimumLogLevel(verbose ? LogLevel.Debug : LogLevel.Info))
}
