// Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the main thread's busy time went,
// by package and by function (self time), as shares of the time it was not idle.
// Usage: tsx bench/profile.ts <file.cpuprofile> [top=25] [window]
// `window` keeps only some samples: `from-to` in seconds since the profile started (the bench
// prints each measured run's window when BENCH_NODE_ARGS is set), or `N` for the last N seconds.
// Profile the service under load with BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
// (see bench/PROFILE.md); the profile is written when the service exits.
import { readFileSync } from 'node:fs'
import path from 'node:path'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

const [file, topArg, windowArg] = process.argv.slice(2)
const windowMatch = windowArg === undefined ? undefined : /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(windowArg)
if (!file || (topArg !== undefined && !/^\d+$/.test(topArg)) || (windowArg !== undefined && !windowMatch)) {
  console.error('usage: tsx bench/profile.ts <file.cpuprofile> [top] [from-to | last-seconds]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parentOf = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)

// Self time per node: each sample's delta is charged to the node it landed in.
const selfUs = new Map<number, number>()
const stamps: number[] = []
let clock = profile.startTime
for (const delta of profile.timeDeltas) stamps.push((clock += delta))
const lastStamp = stamps.at(-1) ?? profile.endTime
let windowStart = Number.NEGATIVE_INFINITY
let windowEnd = Number.POSITIVE_INFINITY
if (windowMatch?.[2] !== undefined) {
  windowStart = profile.startTime + Number(windowMatch[1]) * 1e6
  windowEnd = profile.startTime + Number(windowMatch[2]) * 1e6
} else if (windowMatch) {
  windowStart = lastStamp - Number(windowMatch[1]) * 1e6
}
let idleUs = 0
let sampledUs = 0
for (let i = 0; i < profile.samples.length; i++) {
  if (stamps[i] < windowStart || stamps[i] > windowEnd) continue
  const delta = Math.max(0, profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0)
  sampledUs += delta
  if (byId.get(profile.samples[i])!.callFrame.functionName === '(idle)') {
    idleUs += delta
    continue
  }
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + delta)
}
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0)

/** node:internal, a package in node_modules, the project's own code, or V8's pseudo-frames. */
function packageOf(frame: CallFrame): string {
  const { url, functionName } = frame
  if (!url) return functionName.startsWith('(') ? functionName : '(native code: crypto, I/O bindings, V8 builtins)'
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(5).split('/').slice(0, 2).join('/') : url.slice(5)}`
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const local = url.replace(/^file:\/\//, '')
  const rel = path.relative(process.cwd(), local)
  return rel.startsWith('..') ? local : rel.split('/').slice(0, 2).join('/')
}

function label(frame: CallFrame): string {
  if (!frame.url && !frame.functionName.startsWith('(')) return `${frame.functionName || '(anonymous)'} (native)`
  const where = frame.url ? `${frame.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, '').replace(process.cwd() + '/', '')}:${frame.lineNumber + 1}` : ''
  return `${frame.functionName || '(anonymous)'} ${where}`.trim()
}

const byPackage = new Map<string, number>()
const byFunction = new Map<string, number>()
for (const [id, us] of selfUs) {
  const frame = byId.get(id)!.callFrame
  byPackage.set(packageOf(frame), (byPackage.get(packageOf(frame)) ?? 0) + us)
  byFunction.set(label(frame), (byFunction.get(label(frame)) ?? 0) + us)
}

// Inclusive time of the project's own functions (src/): how much of the total runs under them.
const inclusive = new Map<string, number>()
for (const [id, us] of selfUs) {
  const seen = new Set<string>()
  for (let node: number | undefined = id; node !== undefined; node = parentOf.get(node)) {
    const frame = byId.get(node)!.callFrame
    if (!frame.url.includes('/src/') || frame.url.includes('node_modules')) continue
    const key = label(frame)
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + us)
  }
}

const pct = (us: number) => `${((100 * us) / totalUs).toFixed(1).padStart(5)} %`
const print = (title: string, entries: Map<string, number>, n: number) => {
  console.log(`\n${title}`)
  for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`)
  }
}

console.log(`${path.basename(file)}: ${(sampledUs / 1e6).toFixed(1)} s sampled${windowArg ? ` (window ${windowArg} s)` : ''}, ` +
  `${(totalUs / 1e6).toFixed(1)} s busy, ${(100 * idleUs / Math.max(1, sampledUs)).toFixed(0)} % idle; shares below are of the busy time`)
print('self time by package / area', byPackage, 20)
print(`self time by function (top ${top})`, byFunction, top)
print('inclusive time under the service\'s own functions (src/)', inclusive, 15)
