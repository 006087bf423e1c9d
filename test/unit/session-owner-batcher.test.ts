import t from 'tap'
import { SessionOwnerBatcher } from '../../src/services/session-owner-batcher.js'

/** A query that records each batch and answers when `release` is called (or at once). */
function recordingQuery(owners: Record<string, string>, options: { hold?: boolean, fail?: (ids: readonly string[]) => boolean } = {}) {
  const batches: string[][] = []
  const held: Array<() => void> = []
  const query = (ids: readonly string[]) => {
    batches.push([...ids])
    return new Promise<ReadonlyMap<string, string>>((resolve, reject) => {
      const answer = () => {
        if (options.fail?.(ids)) reject(new Error('database down'))
        else resolve(new Map(ids.filter((id) => id in owners).map((id) => [id, owners[id]])))
      }
      if (options.hold) held.push(answer)
      else answer()
    })
  }
  const releaseAll = () => held.splice(0).forEach((answer) => answer())
  return { query, batches, releaseAll }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

t.test('lookups of one turn go in one query; each gets its own answer, repeats share one', async (t) => {
  const { query, batches } = recordingQuery({ s1: 'u1', s2: 'u2' })
  const batcher = new SessionOwnerBatcher({ query, maxInFlight: 1, maxBatch: 100 })
  const answers = await Promise.all(['s1', 's2', 'gone', 's1'].map((id) => batcher.owner(id)))
  t.same(answers, ['u1', 'u2', undefined, 'u1'])
  t.same(batches, [['s1', 's2', 'gone']], 'one query, the repeated id once')
})

t.test('while maxInFlight queries run, the next lookups wait and go together', async (t) => {
  const { query, batches, releaseAll } = recordingQuery({ a: 'u', b: 'u', c: 'u', d: 'u' }, { hold: true })
  const batcher = new SessionOwnerBatcher({ query, maxInFlight: 1, maxBatch: 100 })
  const first = batcher.owner('a')
  await tick()
  t.same(batches, [['a']], 'a lone lookup goes at the end of its turn')
  const later = [batcher.owner('b')]
  await tick()
  later.push(batcher.owner('c'), batcher.owner('d'))
  await tick()
  t.equal(batches.length, 1, 'nothing more while one query is in flight')
  t.equal(batcher.queued, 3)
  releaseAll()
  t.equal(await first, 'u')
  await tick()
  t.same(batches, [['a'], ['b', 'c', 'd']], 'the three waiting went as one query')
  releaseAll()
  t.same(await Promise.all(later), ['u', 'u', 'u'])
  t.equal(batcher.queued, 0)
})

t.test('maxBatch splits a large gathering; up to maxInFlight queries at once', async (t) => {
  const owners = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`s${i}`, `u${i}`]))
  const { query, batches, releaseAll } = recordingQuery(owners, { hold: true })
  const batcher = new SessionOwnerBatcher({ query, maxInFlight: 2, maxBatch: 10 })
  const answers = Promise.all(Object.keys(owners).map((id) => batcher.owner(id)))
  await tick()
  t.same(batches.map((batch) => batch.length), [10, 10], 'two queries of ten in flight, five waiting')
  releaseAll()
  await tick()
  t.same(batches.map((batch) => batch.length), [10, 10, 5])
  releaseAll()
  t.same(await answers, Object.values(owners))
})

t.test('a failed query fails the lookups in it, and only those', async (t) => {
  const { query, batches, releaseAll } = recordingQuery({ a: 'u', b: 'u' }, { hold: true, fail: (ids) => ids.includes('a') })
  const batcher = new SessionOwnerBatcher({ query, maxInFlight: 1, maxBatch: 100 })
  const failing = batcher.owner('a')
  await tick()
  const next = batcher.owner('b')
  releaseAll()
  await t.rejects(failing, /database down/)
  await tick()
  releaseAll()
  t.equal(await next, 'u', 'the next query is unaffected')
  t.same(batches, [['a'], ['b']])
})
