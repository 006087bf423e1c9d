// The service hashes passwords on threads of its own at a low OS priority
// (src/services/password-threads.ts): none at rest, at most PASSWORD_HASH_CONCURRENCY, each at
// PASSWORD_HASH_NICE on Linux, with the same results as the thread-pool functions.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { PasswordHasher, hashPassword, verifyPassword } from '../../src/services/passwords.js'
import { PASSWORD } from '../helper.js'

/** The nice value of each thread of this process (Linux; the 19th field of /proc/<pid>/task/<tid>/stat). */
function niceValues(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return Number(fields[16])
  })
}
const linux = existsSync('/proc/self/task')

t.test('hash, verify and the timing burn run on the threads, with the results of the thread-pool functions', async (t) => {
  const hasher = new PasswordHasher({ concurrency: 2, queue: 8, nice: 19 })
  t.teardown(() => hasher.close())
  const before = linux ? niceValues().filter((nice) => nice === 19).length : 0

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
    t.equal(niceValues().filter((nice) => nice === 19).length - before, 2, 'two threads (the concurrency), each at nice 19')
  }
})

t.test('no thread at rest; nice 0 leaves the threads at the process priority', { skip: linux ? false : 'needs /proc (Linux)' }, async (t) => {
  const threadsBefore = readdirSync('/proc/self/task').length
  const hasher = new PasswordHasher({ concurrency: 3, queue: 8, nice: 0 })
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
  const hasher = new PasswordHasher({ concurrency: 2, queue: 8, nice: 0 })
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
