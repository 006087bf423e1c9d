// Options for the benchmark and the soak: every option is an environment variable (BENCH_*,
// SOAK_*) and can also be given as a flag: `--duration=5` or `--duration 5` sets BENCH_DURATION
// (for bench/run.ts) or SOAK_DURATION (for bench/soak.ts). Flags win over the environment.

export class OptionError extends Error {
  override name = 'OptionError'
}

/** Reads `--name=value` / `--name value` / `--flag` into PREFIX_NAME keys. */
export function readFlags(argv: readonly string[], prefix: string): Record<string, string> {
  const flags: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument "${arg}" (options are --name=value)`)
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2)
    if (value === undefined) {
      const next = argv[i + 1]
      if (next !== undefined && !next.startsWith('--')) {
        value = next
        i++
      } else {
        value = '1' // a bare flag: --smoke
      }
    }
    flags[`${prefix}_${name.toUpperCase().replace(/-/g, '_')}`] = value
  }
  return flags
}

export class OptionSource {
  constructor(private readonly values: Record<string, string | undefined>) {}

  raw(name: string): string | undefined {
    const value = this.values[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback
  }

  optionalString(name: string): string | undefined {
    return this.raw(name)
  }

  int(name: string, fallback: number, min = 0): number {
    const value = this.raw(name)
    if (value === undefined) return fallback
    if (!/^\d+$/.test(value)) throw new OptionError(`${name} must be a whole number (got "${value}")`)
    const n = Number(value)
    if (n < min) throw new OptionError(`${name} must be at least ${min} (got ${n})`)
    return n
  }

  bool(name: string, fallback = false): boolean {
    const value = this.raw(name)
    if (value === undefined) return fallback
    if (/^(1|true|yes|on)$/i.test(value)) return true
    if (/^(0|false|no|off)$/i.test(value)) return false
    throw new OptionError(`${name} must be 1/0, true/false, yes/no or on/off (got "${value}")`)
  }

  /** Seconds: `10`, `10s`, `2m`, `1h`, `1.5`. */
  seconds(name: string, fallback: number): number {
    const value = this.raw(name)
    if (value === undefined) return fallback
    const seconds = parseSeconds(value)
    if (seconds === undefined) throw new OptionError(`${name} must be seconds or a duration like 30s, 10m (got "${value}")`)
    return seconds
  }
}

export function parseSeconds(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(value.trim())
  if (!match) return undefined
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] ?? 's'] ?? 1
  return Number(match[1]) * unit
}

export function formatSeconds(seconds: number): string {
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60}m`
  return `${seconds}s`
}
