// The recovery settings (docs/recovery.md, "Settings"): production refuses to start with recovery
// on and no SMTP_URL; outside production the mail goes to the log; templates must hold {token}.
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

const production = { NODE_ENV: 'production' }
const links = { PASSWORD_RESET_URL: 'https://app.example.com/reset#token={token}', EMAIL_VERIFICATION_URL: 'https://app.example.com/verify#token={token}' }

t.test('defaults outside production: on, mail to the log, 30 minutes and 24 hours', async (t) => {
  const { recovery } = loadConfig({})
  t.match(recovery, {
    enabled: true,
    requireVerifiedEmail: false,
    smtpUrl: undefined,
    passwordResetTtl: 1800,
    emailVerificationTtl: 86_400,
    passwordResetUrl: /\{token\}/,
    emailVerificationUrl: /\{token\}/
  })
})

t.test('production: RECOVERY=on without SMTP_URL refuses to start', async (t) => {
  t.throws(() => loadConfig({ ...production, RECOVERY: 'on', ...links }), new ConfigError('RECOVERY=on in production needs SMTP_URL (or set RECOVERY=off)'))
  t.throws(() => loadConfig({ ...production, SMTP_URL: 'smtp://mail.internal:587' }), ConfigError, 'and without the front end\'s links')
  t.equal(loadConfig({ ...production, SMTP_URL: 'smtp://mail.internal:587', ...links }).recovery.enabled, true, 'on with SMTP_URL and the links')
  t.equal(loadConfig(production).recovery.enabled, false, 'off by default without SMTP_URL: the endpoints do not exist')
  t.throws(() => loadConfig({ ...production, REQUIRE_VERIFIED_EMAIL: 'true' }), ConfigError, 'REQUIRE_VERIFIED_EMAIL needs recovery on')
})

t.test('bad values name the variable', async (t) => {
  t.throws(() => loadConfig({ PASSWORD_RESET_URL: 'https://app.example.com/reset' }), /PASSWORD_RESET_URL must contain \{token\}/)
  t.throws(() => loadConfig({ EMAIL_VERIFICATION_URL: 'javascript:{token}' }), /EMAIL_VERIFICATION_URL/)
  t.throws(() => loadConfig({ SMTP_URL: 'http://mail' }), /SMTP_URL must be an smtp:\/\/ or smtps:\/\/ URL/)
  t.throws(() => loadConfig({ PASSWORD_RESET_TTL: '0' }), /PASSWORD_RESET_TTL/)
  t.throws(() => loadConfig({ REQUIRE_VERIFIED_EMAIL: 'yes' }), /REQUIRE_VERIFIED_EMAIL/)
})
