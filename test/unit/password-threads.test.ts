// The service hashes passwords on threads of its own at a low OS priority
// (src/services/password-threads.ts): none at rest, at most PASSWORD_HASH_CONCURRENCY, each at
// SCHED_IDLE or PASSWORD_HASH_NICE on Linux and kept off one CPU (PASSWORD_HASH_CPUS), with the
// same results as the thread-pool functions.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { allowedCpus, hashingCpus, parseCpusAllowed } from '../../src/services/password-threads.js'
import { PasswordHasher, hashPassword, verifyPassword } from '../../src/services/passwords.js'
import { PASSWORD } from '../helper.js'

/** One field of /proc/<pid>/task/<tid>/stat for each thread of this process (Linux; `field` as proc(5) numbers them). */
function threadStat(field: number): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return Number(fields[field - 3])
  })
}
const niceValues = () => threadStat(19)
const threadsAtNice = (value: number) => niceValues().filter((nice) => nice === value).length
/** SCHED_IDLE, as the 41st field (policy) gives it. */
const SCHED_IDLE = 5
const idleThreads = () => threadStat(41).filter((policy) => policy === SCHED_IDLE).length
const linux = existsSync('/proc/self/task')
const chrt = spawnSync('chrt', ['--version'], { stdio: 'ignore' }).status === 0
const taskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0
/** The CPU list of each thread of this process, as /proc gives it ("0-1", "1"). */
const threadCpuLists = () => readdirSync('/proc/self/task').map((tid) =>
  /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))![1]!)

t.test('hash, verify and the timing burn run on the threads, with the results of the thread-pool functions', async (t) => {
  const hasher = new PasswordHasher({ concurrency: 2, queue: 8, priority: { policy: 'normal', nice: 19 } })
  t.teardown(() => hasher.close())
  const before = linux ? threadsAtNice(19) : 0

  const hash = await hasher.hash(PASSWORD)
  t.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'argon2id with the service parameters')
  t.equal(await verifyPassword(hash, PASSWORD), true, 'a thread-made hash verifies on the thread pool')
  t.equal(await hasher.verify(await hashPassword(PASSWORD), PASSWORD), true, 'and the other way round')
  t.equal(await hasher.verify(hash, 'not the password'), false, 'a wrong password: false')
  t.equal(await hasher.verify('not a hash', PASSWORD), false, 'a corrupt stored hash: false, never a login')
  t.equal(await hasher.burn(PASSWORD), false, 'the burn for unknown emails')

  const many = await Promise.all(Array.from({ length: 6 }, (_, i) => hasher.verify(hash, i % 2 === 0 ? PASSWORD : 'wrong')))
  t.same(many, [true, false, true, false, true, false], 'six at once over two threads, each its own answer')

  if (linux) {
    t.equal(threadsAtNice(19) - before, 2, 'two threads (the concurrency), each at nice 19')
  }
})

t.test('policy idle: the threads run at SCHED_IDLE', { skip: linux && chrt ? false : 'needs /proc (Linux) and chrt (util-linux)' }, async (t) => {
  const before = idleThreads()
  const niceBefore = threadsAtNice(19)
  const hasher = new PasswordHasher({ concurrency: 2, queue: 8, priority: { policy: 'idle', nice: 19 } })
  t.teardown(() => hasher.close())
  const hash = await hasher.hash(PASSWORD)
  t.same(await Promise.all([hasher.verify(hash, PASSWORD), hasher.verify(hash, 'wrong')]), [true, false], 'each its own answer')
  t.equal(idleThreads() - before, 2, 'two threads, each at SCHED_IDLE')
  t.equal(threadsAtNice(19), niceBefore, 'and no nice value on top: SCHED_IDLE ignores it')
})

t.test('no thread at rest; nice 0 leaves the threads at the process priority', { skip: linux ? false : 'needs /proc (Linux)' }, async (t) => {
  const threadsBefore = readdirSync('/proc/self/task').length
  const hasher = new PasswordHasher({ concurrency: 3, queue: 8, priority: { policy: 'normal', nice: 0 } })
  t.teardown(() => hasher.close())
  t.equal(readdirSync('/proc/self/task').length, threadsBefore, 'constructing it starts no thread')
  const niceBefore = niceValues().filter((nice) => nice > 0).length
  await hasher.hash(PASSWORD)
  t.equal(readdirSync('/proc/self/task').length, threadsBefore + 1, 'one computation started one thread')
  t.equal(niceValues().filter((nice) => nice > 0).length, niceBefore, 'at the process priority')
  await hasher.close()
  for (let i = 0; i < 50 && readdirSync('/proc/self/task').length > threadsBefore; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(readdirSync('/proc/self/task').length, threadsBefore, 'close() ends it')
})

t.test('releaseIdleThreads() ends the threads not computing; the next hash starts one again', { skip: linux ? false : 'needs /proc (Linux)' }, async (t) => {
  const threadCount = () => readdirSync('/proc/self/task').length
  const settled = async (count: number) => {
    for (let i = 0; i < 50 && threadCount() !== count; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    return threadCount()
  }
  const threadsBefore = threadCount()
  const hasher = new PasswordHasher({ concurrency: 2, queue: 8 })
  t.teardown(() => hasher.close())
  const hash = await hasher.hash(PASSWORD)
  await Promise.all([hasher.verify(hash, PASSWORD), hasher.verify(hash, 'wrong')])
  t.equal(threadCount(), threadsBefore + 2, 'two threads after two at once')

  const computing = hasher.verify(hash, PASSWORD)
  await hasher.releaseIdleThreads()
  t.equal(await settled(threadsBefore + 1), threadsBefore + 1, 'the one computing is kept, the idle one ended')
  t.equal(await computing, true, 'and the computation finishes')

  await hasher.releaseIdleThreads()
  t.equal(await settled(threadsBefore), threadsBefore, 'idle: none left')
  t.equal(await hasher.verify(hash, PASSWORD), true, 'a hash after the release works, on a new thread')
  t.equal(threadCount(), threadsBefore + 1, 'one thread again')
})

t.test('without util-linux: the threads fall back to the nice value, on any CPU', { skip: linux ? false : 'needs /proc (Linux)' }, async (t) => {
  const path = process.env.PATH
  // A worker takes a copy of process.env when it starts: this one finds neither chrt nor taskset.
  process.env.PATH = '/nonexistent'
  t.teardown(() => { process.env.PATH = path })
  const cpus = allowedCpus()!
  const pinnedBefore = threadCpuLists().filter((list) => list === String(cpus.at(-1))).length
  const before = { idle: idleThreads(), nice: threadsAtNice(19) }
  const warnings: string[] = []
  const hasher = new PasswordHasher({ concurrency: 1, queue: 8, priority: { policy: 'idle', nice: 19, cpus: cpus.slice(-1) } }, (message) => warnings.push(message))
  t.teardown(() => hasher.close())
  await hasher.hash(PASSWORD)
  t.equal(idleThreads(), before.idle, 'no SCHED_IDLE thread')
  t.equal(threadsAtNice(19) - before.nice, 1, 'the thread at nice 19')
  if (cpus.length > 1) t.equal(threadCpuLists().filter((list) => list === String(cpus.at(-1))).length, pinnedBefore, 'and on every CPU')
  await hasher.releaseIdleThreads()
  await hasher.hash(PASSWORD) // a new thread, which fails the same way
  process.env.PATH = path
  t.same(warnings, [
    'password hashing: chrt --idle failed (no util-linux?); the hashing threads run at nice 19 instead',
    'password hashing: taskset failed (no util-linux?); the hashing threads run on any CPU'
  ], 'each failure reported to the caller once, however many threads start')
})

t.test('PASSWORD_HASH_POLICY and PASSWORD_HASH_NICE: idle at 19 by default, anything else refused at start', async (t) => {
  t.match(loadConfig({ NODE_ENV: 'test' }).passwordHashing.priority, { policy: 'idle', nice: 19 })
  t.match(loadConfig({ NODE_ENV: 'test', PASSWORD_HASH_POLICY: 'normal', PASSWORD_HASH_NICE: '5' }).passwordHashing.priority, { policy: 'normal', nice: 5 })
  t.throws(() => loadConfig({ NODE_ENV: 'test', PASSWORD_HASH_POLICY: 'batch' }), ConfigError)
  t.throws(() => loadConfig({ NODE_ENV: 'test', PASSWORD_HASH_NICE: '20' }), ConfigError)
})

t.test('allowedCpus() reads the process CPU list; hashingCpus() leaves the first out when every thread still has one', async (t) => {
  t.same(parseCpusAllowed('Name:\tnode\nCpus_allowed:\tf0d\nCpus_allowed_list:\t0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11], 'ranges and single CPUs')
  t.equal(parseCpusAllowed('Name:\tnode\n'), undefined, 'no list: unknown')
  t.equal(parseCpusAllowed('Cpus_allowed_list:\tx-y\n'), undefined, 'unreadable: unknown')
  t.equal(parseCpusAllowed('Cpus_allowed_list:\t3-,1\n'), undefined, 'half a range: unknown')
  if (linux) t.equal(allowedCpus()?.length, availableParallelism(), 'on this machine: as many as Node counts')

  t.same(hashingCpus('all-but-one', 1, [0, 1]), [1], 'two CPUs, one thread: the second CPU')
  t.same(hashingCpus('all-but-one', 3, [2, 3, 4, 5]), [3, 4, 5], 'the first CPU of the set left out, not CPU 0')
  t.equal(hashingCpus('all-but-one', 2, [0, 1]), undefined, 'more threads than CPUs left: any CPU')
  t.equal(hashingCpus('all-but-one', 1, [0]), undefined, 'one CPU: any CPU')
  t.equal(hashingCpus('all-but-one', 1, undefined), undefined, 'CPUs unknown: any CPU')
  t.equal(hashingCpus('all', 1, [0, 1, 2, 3]), undefined, 'all: any CPU')
})

t.test('PASSWORD_HASH_CPUS: all-but-one by default, all, anything else refused at start', async (t) => {
  const cpus = allowedCpus()
  const expected = cpus && cpus.length > 1 ? cpus.slice(1) : undefined
  t.same(loadConfig({ NODE_ENV: 'test' }).passwordHashing.priority?.cpus, expected, `the default on this machine: ${expected?.join(',') ?? 'any CPU'}`)
  t.equal(loadConfig({ NODE_ENV: 'test', PASSWORD_HASH_CPUS: 'all' }).passwordHashing.priority?.cpus, undefined, 'all: any CPU')
  t.equal(loadConfig({ NODE_ENV: 'test', PASSWORD_HASH_CONCURRENCY: String(availableParallelism()) }).passwordHashing.priority?.cpus, undefined, 'a thread per CPU: any CPU')
  t.throws(() => loadConfig({ NODE_ENV: 'test', PASSWORD_HASH_CPUS: '1-3' }), ConfigError)
})

const pinSkip = linux && taskset && availableParallelism() > 1 ? false : 'needs /proc (Linux), taskset (util-linux) and two CPUs'
t.test('cpus: each thread runs only on the CPUs given', { skip: pinSkip }, async (t) => {
  const last = allowedCpus()!.at(-1)!
  const before = threadCpuLists().filter((list) => list === String(last)).length
  const hasher = new PasswordHasher({ concurrency: 2, queue: 8, priority: { policy: 'normal', nice: 0, cpus: [last] } })
  t.teardown(() => hasher.close())
  const hash = await hasher.hash(PASSWORD)
  t.same(await Promise.all([hasher.verify(hash, PASSWORD), hasher.verify(hash, 'wrong')]), [true, false], 'each its own answer')
  t.equal(threadCpuLists().filter((list) => list === String(last)).length - before, 2, `two threads, each on CPU ${last} only`)
  t.equal(threadCpuLists().filter((list) => list !== String(last)).length, threadCpuLists().length - before - 2, 'the other threads keep every CPU')
})
