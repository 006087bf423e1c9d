// The Swagger UI still works under the docs' Content-Security-Policy (src/plugins/security-headers.ts,
// DOCS_CSP): a real headless Chromium (Debian's `chromium` package; CHROMIUM names another binary)
// loads /docs from a real listener on 127.0.0.1, here the internal one (DOCS=internal), and
// the rendered DOM must hold one operation per operation of the OpenAPI document, with no CSP
// violation in the browser's console. A screenshot is kept in this test's fixture folder
// (.tap/fixtures/, printed below). Without Chromium the test skips and says why.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { buildTestApp } from '../helper.js'

function findChromium(): string | undefined {
  for (const candidate of [process.env.CHROMIUM, 'chromium', 'chromium-browser'].filter(Boolean) as string[]) {
    const found = spawnSync(candidate, ['--version'], { encoding: 'utf8', timeout: 30_000 })
    if (found.status === 0) return candidate
  }
  return undefined
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs Chromium once, headless, in a profile of its own; killed (its process group) after `timeoutMs`. */
function chromium(bin: string, args: string[], timeoutMs = 90_000): Promise<Run> {
  const profile = mkdtempSync(path.join(tmpdir(), 'auth-chromium-'))
  const child = spawn(bin, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
    '--no-proxy-server', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0',
    // Let the page load its scripts and the document, and render, before the DOM or the picture is taken.
    '--virtual-time-budget=15000', ...args
  ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  }, timeoutMs)
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer)
      rmSync(profile, { recursive: true, force: true })
      resolve({ code, stdout, stderr })
    })
  })
}

const bin = findChromium()
const skip = bin ? false : 'Chromium is not installed (apt-get install chromium, or set CHROMIUM): the Swagger UI is not checked in a browser'

t.test('the Swagger UI renders every operation under its CSP, in headless Chromium', { skip }, async (t) => {
  const { app } = await buildTestApp(t, { env: { DOCS: 'internal', METRICS: 'internal', INTERNAL_PORT: '0' } })
  const internal = app.internal!
  await app.ready()
  await internal.listen({ host: '127.0.0.1', port: 0 })
  const { port } = internal.server.address() as { port: number }
  const url = `http://127.0.0.1:${port}/docs`

  const page = await fetch(url)
  t.equal(page.status, 200)
  const csp = page.headers.get('content-security-policy') ?? ''
  t.match(csp, /frame-ancestors 'none'/, 'the page may not be framed')
  const document = await (await fetch(`http://127.0.0.1:${port}/docs/json`)).json() as { paths: Record<string, Record<string, unknown>> }
  const operations = Object.entries(document.paths).flatMap(([p, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${p}`))
  t.ok(operations.length >= 10, `${operations.length} operations in the document`)

  t.saveFixture = true
  const dir = t.testdir()
  const dom = await chromium(bin as string, ['--dump-dom', url])
  t.equal(dom.code, 0, 'chromium --dump-dom exits 0')
  writeFileSync(path.join(dir, 'docs.html'), dom.stdout)
  const rendered = [...dom.stdout.matchAll(/class="opblock-summary-path" data-path="([^"]+)"/g)].map((m) => m[1])
  t.equal(rendered.length, operations.length, `the UI rendered ${rendered.length} operations`)
  for (const p of Object.keys(document.paths)) t.ok(rendered.includes(p), `${p} is on the page`)
  t.notMatch(dom.stderr, /Content Security Policy/i, 'no CSP violation in the console')
  t.notMatch(dom.stdout, /Failed to load API definition/, 'the UI loaded the document')

  const screenshot = path.join(dir, 'docs.png')
  const shot = await chromium(bin as string, [`--screenshot=${screenshot}`, '--window-size=1280,900', '--hide-scrollbars', url])
  t.equal(shot.code, 0, 'chromium --screenshot exits 0')
  t.ok(existsSync(screenshot) && statSync(screenshot).size > 20_000, 'a screenshot of the rendered page')
  t.notMatch(shot.stderr, /Content Security Policy/i, 'no CSP violation in the console')
  t.comment(`screenshot: ${path.relative(process.cwd(), screenshot)}`)
})
