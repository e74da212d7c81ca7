/**
 * Branded quantities. Internal numbers are SI base units (bytes, seconds, FLOPs,
 * hertz, watts); the brand keeps a rate from being passed where a size is expected.
 */

declare const unitBrand: unique symbol

type Quantity<Unit extends string> = number & { readonly [unitBrand]: Unit }

export type Bytes = Quantity<"bytes">
export type Seconds = Quantity<"seconds">
export type Flops = Quantity<"flops">
export type BytesPerSecond = Quantity<"bytes/s">
export type FlopsPerSecond = Quantity<"flop/s">
export type OpsPerSecond = Quantity<"op/s">
export type Hertz = Quantity<"hertz">
export type Watts = Quantity<"watts">
export type Cycles = Quantity<"cycles">
export type UsdPerHour = Quantity<"usd/h">

export const bytes = (n: number): Bytes => n as Bytes
export const seconds = (n: number): Seconds => n as Seconds
export const flops = (n: number): Flops => n as Flops
export const bytesPerSecond = (n: number): BytesPerSecond => n as BytesPerSecond
export const flopsPerSecond = (n: number): FlopsPerSecond => n as FlopsPerSecond
export const opsPerSecond = (n: number): OpsPerSecond => n as OpsPerSecond
export const hertz = (n: number): Hertz => n as Hertz
export const watts = (n: number): Watts => n as Watts
export const cycles = (n: number): Cycles => n as Cycles
export const usdPerHour = (n: number): UsdPerHour => n as UsdPerHour

// Decimal and binary size constructors: 1 GB is 10^9 bytes, 1 GiB is 2^30 bytes.
export const kB = (n: number): Bytes => bytes(n * 1e3)
export const MB = (n: number): Bytes => bytes(n * 1e6)
export const GB = (n: number): Bytes => bytes(n * 1e9)
export const TB = (n: number): Bytes => bytes(n * 1e12)
export const KiB = (n: number): Bytes => bytes(n * 2 ** 10)
export const MiB = (n: number): Bytes => bytes(n * 2 ** 20)
export const GiB = (n: number): Bytes => bytes(n * 2 ** 30)
export const TiB = (n: number): Bytes => bytes(n * 2 ** 40)

export const GHz = (n: number): Hertz => hertz(n * 1e9)
export const TFLOPs = (n: number): FlopsPerSecond => flopsPerSecond(n * 1e12)
export const TBps = (n: number): BytesPerSecond => bytesPerSecond(n * 1e12)
export const GBps = (n: number): BytesPerSecond => bytesPerSecond(n * 1e9)
