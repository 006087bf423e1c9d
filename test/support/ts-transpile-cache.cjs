'use strict'
/* global require, exports, process */
/* eslint-disable @typescript-eslint/no-require-imports -- ts-node loads a transpiler with require() */
// The ts-node "transpiler" of the test run (tsconfig.json, "ts-node"): the same TypeScript
// transpile ts-node does itself in transpile-only mode (its createTsTranspileModule, same
// compiler options, same module kind), with the output cached on disk by a hash of everything it
// depends on. tap runs every test file in a process of its own, and each of them transpiled the
// same hundred files again: about 0.8 s of CPU per process. Output is byte for byte what ts-node
// makes, so source maps and coverage are unchanged. Anything with a diagnostic is not cached.
const { createHash } = require('node:crypto')
const { mkdirSync, readFileSync, renameSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const path = require('node:path')

const TS_NODE = path.dirname(require.resolve('@isaacs/ts-node-temp-fork-for-pr-2009/package.json'))
const { createTsTranspileModule } = require(path.join(TS_NODE, 'dist/ts-transpile-module.js'))
const TS_NODE_VERSION = require(path.join(TS_NODE, 'package.json')).version
const CACHE = path.join(tmpdir(), 'auth-service-ts-transpile-cache')

exports.create = function create({ service, nodeModuleEmitKind }) {
  const ts = service.projectLocalResolveHelper(service.options.compiler || 'typescript', true)
  const typescript = require(ts)
  const compilerOptions = service.config.options
  const transpile = createTsTranspileModule(typescript, { compilerOptions, reportDiagnostics: true })
  const kind = nodeModuleEmitKind === 'nodeesm' ? 'module' : 'commonjs'
  const context = JSON.stringify([typescript.version, TS_NODE_VERSION, kind, compilerOptions])
  mkdirSync(CACHE, { recursive: true })

  return {
    transpile(code, { fileName }) {
      const key = createHash('sha256').update(context).update('\0').update(fileName).update('\0').update(code).digest('hex')
      const file = path.join(CACHE, `${key}.json`)
      try {
        return JSON.parse(readFileSync(file, 'utf8'))
      } catch {
        // not cached yet (or unreadable): transpile
      }
      const result = transpile(code, { fileName }, kind)
      if (!result.diagnostics || result.diagnostics.length === 0) {
        const output = { outputText: result.outputText, sourceMapText: result.sourceMapText }
        try {
          const temporary = `${file}.${process.pid}.tmp`
          writeFileSync(temporary, JSON.stringify(output))
          renameSync(temporary, file)
        } catch {
          // a cache that cannot be written only costs the time it would have saved
        }
        return output
      }
      return result
    }
  }
}
