// The SSF settings (docs/ssf.md, "Configuration"): defaults, and the refusals that stop the start.
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

const base = { NODE_ENV: 'test', LOG_LEVEL: 'silent' }

t.test('defaults', async (t) => {
  t.same(loadConfig(base).ssf, { pollTimeout: 25, streamIdleTtl: 3600, pushAllowedOrigins: [], maxStreamsPerClient: 1000 })
})

t.test('SSF_PUSH_ALLOWED_ORIGINS: origins, normalised', async (t) => {
  const config = loadConfig({ ...base, SSF_PUSH_ALLOWED_ORIGINS: ' https://A.example.com , http://127.0.0.1:8080/,https://b.example.com:443' })
  t.same(config.ssf.pushAllowedOrigins, ['https://a.example.com', 'http://127.0.0.1:8080', 'https://b.example.com'])
  for (const bad of ['https://a.example.com/path', 'https://a.example.com?x=1', 'https://u:p@a.example.com', 'ftp://a.example.com', 'not a url', 'https://a.example.com#x']) {
    t.throws(() => loadConfig({ ...base, SSF_PUSH_ALLOWED_ORIGINS: bad }), ConfigError, bad)
  }
  t.throws(() => loadConfig({ ...base, NODE_ENV: 'production', SSF_PUSH_ALLOWED_ORIGINS: 'http://receiver.example.com' }), /https in production/)
})

t.test('durations and limits', async (t) => {
  const config = loadConfig({ ...base, SSF_POLL_TIMEOUT: '1m', SSF_STREAM_IDLE_TTL: '2h', SSF_MAX_STREAMS_PER_CLIENT: '7' })
  t.same([config.ssf.pollTimeout, config.ssf.streamIdleTtl, config.ssf.maxStreamsPerClient], [60, 7200, 7])
  for (const env of [{ SSF_POLL_TIMEOUT: '0' }, { SSF_POLL_TIMEOUT: '301' }, { SSF_POLL_TIMEOUT: 'soon' }, { SSF_STREAM_IDLE_TTL: '0' }, { SSF_MAX_STREAMS_PER_CLIENT: '0' }]) {
    t.throws(() => loadConfig({ ...base, ...env }), ConfigError, JSON.stringify(env))
  }
})
