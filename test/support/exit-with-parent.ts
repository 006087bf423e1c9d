// Preloaded (`--import`) into the servers tests start: a server whose test process is gone (killed
// by the runner's timeout, or from outside, before its teardown could stop it) ends itself with
// SIGTERM, its own graceful shutdown, instead of holding its port and database connections.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM')
}, 500).unref()
