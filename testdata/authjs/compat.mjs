// Drives an otpgate instance with the unmodified @supabase/auth-js client.
//
// Usage: node compat.mjs <base-url> <phone> <code>
//   base-url  the API prefix, e.g. http://127.0.0.1:8080/auth/v1
//   phone     an E.164 number configured with `test_phone <phone> <code>`
//   code      that number's fixed code
//
// On success prints one JSON line ({"ok":true,...}) to stdout and exits 0.
// On failure prints a message naming the failed step, plus every HTTP
// exchange auth-js made (request body, status, response body), to stderr and
// exits 1. Run `npm ci --prefix testdata/authjs` first (Node.js 20+).
import { readFileSync } from 'node:fs'
import { GoTrueClient, AuthApiError, isAuthSessionMissingError } from '@supabase/auth-js'

const [baseURL, phone, code] = process.argv.slice(2)
if (!baseURL || !phone || !code) {
  console.error('usage: node compat.mjs <base-url e.g. http://127.0.0.1:PORT/auth/v1> <phone> <code>')
  process.exit(2)
}

const authjsVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@supabase/auth-js/package.json', import.meta.url), 'utf8'),
).version

// Every HTTP exchange auth-js makes, so failures can show exactly what was
// sent and what came back.
const exchanges = []
async function recordingFetch(input, init = {}) {
  const url = new URL(typeof input === 'string' ? input : input.url)
  const ex = {
    method: init.method || 'GET',
    path: url.pathname + url.search,
    headers: Object.fromEntries(new Headers(init.headers || {}).entries()),
    body: init.body === undefined ? undefined : tryJSON(init.body),
  }
  exchanges.push(ex)
  const res = await fetch(input, init)
  ex.status = res.status
  ex.responseHeaders = Object.fromEntries(res.headers.entries())
  ex.response = tryJSON(await res.clone().text())
  return res
}

function tryJSON(s) {
  if (typeof s !== 'string') return s
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

class StepError extends Error {}
let step = 'setup'
function check(cond, msg) {
  if (!cond) throw new StepError(msg)
}
function describe(err) {
  if (!err) return null
  return { name: err.name, message: err.message, status: err.status, code: err.code }
}
const digits = (s) => String(s ?? '').replace(/\D/g, '')
const sameExchanges = (from) => exchanges.slice(from).map((e) => `${e.method} ${e.path} -> ${e.status}`)

const client = new GoTrueClient({
  url: baseURL,
  persistSession: false, // in-memory storage
  autoRefreshToken: false,
  detectSessionInUrl: false,
  fetch: recordingFetch,
})

const results = { ok: false, authjs: authjsVersion, node: process.version }

async function main() {
  step = 'signInWithOtp'
  {
    const { data, error } = await client.signInWithOtp({ phone })
    check(!error, `signInWithOtp returned error ${JSON.stringify(describe(error))}`)
    results.signInWithOtp = { messageId: data.messageId ?? null }
  }

  step = 'verifyOtp (wrong code)'
  {
    const wrong = code === '000000' ? '111111' : '000000'
    const { data, error } = await client.verifyOtp({ phone, token: wrong, type: 'sms' })
    check(error, 'verifyOtp with a wrong code returned no error')
    check(error instanceof AuthApiError, `wrong code: want AuthApiError, got ${JSON.stringify(describe(error))}`)
    check(
      error.code === 'otp_expired' && error.status === 403,
      `wrong code: want code "otp_expired" status 403, got ${JSON.stringify(describe(error))}`,
    )
    check(!data.session && !data.user, 'wrong code: got a session')
    results.wrongCode = describe(error)
  }

  step = 'verifyOtp'
  let session, user
  {
    const { data, error } = await client.verifyOtp({ phone, token: code, type: 'sms' })
    check(!error, `verifyOtp returned error ${JSON.stringify(describe(error))}`)
    session = data.session
    user = data.user
    check(session && session.access_token && session.refresh_token, 'verifyOtp: no session with access and refresh tokens')
    check(session.token_type === 'bearer', `verifyOtp: token_type ${JSON.stringify(session.token_type)}, want "bearer"`)
    check(session.expires_in > 0 && session.expires_at > Date.now() / 1000, 'verifyOtp: bad expires_in/expires_at')
    check(user && typeof user.id === 'string' && user.id, 'verifyOtp: no user.id')
    check(digits(user.phone) === digits(phone), `verifyOtp: user.phone ${JSON.stringify(user.phone)}, want ${phone}`)
    results.verifyOtp = { userId: user.id, phone: user.phone, expiresIn: session.expires_in }
  }

  step = 'getUser'
  {
    const { data, error } = await client.getUser()
    check(!error, `getUser returned error ${JSON.stringify(describe(error))}`)
    check(data.user && data.user.id === user.id, `getUser: user id ${data.user?.id}, want ${user.id}`)
    check(digits(data.user.phone) === digits(phone), `getUser: phone ${JSON.stringify(data.user.phone)}`)
  }

  step = 'getClaims'
  {
    const from = exchanges.length
    const { data, error } = await client.getClaims()
    check(!error, `getClaims returned error ${JSON.stringify(describe(error))}`)
    const { claims, header } = data
    check(header.alg === 'ES256', `getClaims: alg ${header.alg}, want ES256`)
    check(header.kid, 'getClaims: the JWT header has no kid, so auth-js cannot use the JWKS')
    // auth-js silently falls back to GET /user when the kid is not in the
    // JWKS; insist that the signature really was checked against the JWKS.
    const paths = exchanges.slice(from).map((e) => e.path)
    check(
      paths.some((p) => p.endsWith('/.well-known/jwks.json')) && !paths.some((p) => p.endsWith('/user')),
      `getClaims: want a JWKS fetch and no /user fallback, got ${JSON.stringify(sameExchanges(from))}`,
    )
    check(claims.sub === user.id, `getClaims: sub ${claims.sub}, want ${user.id}`)
    check(digits(claims.phone) === digits(phone), `getClaims: phone ${JSON.stringify(claims.phone)}`)
    check(typeof claims.session_id === 'string' && claims.session_id, 'getClaims: no session_id claim')
    results.getClaims = { kid: header.kid, sub: claims.sub, phone: claims.phone, session_id: claims.session_id }
  }

  step = 'refreshSession'
  let refreshed
  {
    const { data, error } = await client.refreshSession()
    check(!error, `refreshSession returned error ${JSON.stringify(describe(error))}`)
    refreshed = data.session
    check(refreshed && refreshed.access_token && refreshed.refresh_token, 'refreshSession: no session')
    check(refreshed.access_token !== session.access_token, 'refreshSession: access token unchanged')
    check(refreshed.refresh_token !== session.refresh_token, 'refreshSession: refresh token unchanged')
    check(data.user && data.user.id === user.id, `refreshSession: user id ${data.user?.id}, want ${user.id}`)
    const { data: s } = await client.getSession()
    check(s.session && s.session.access_token === refreshed.access_token, 'refreshSession: client did not store the new session')
  }

  step = 'signOut'
  {
    const from = exchanges.length
    const { error } = await client.signOut({ scope: 'local' })
    check(!error, `signOut returned error ${JSON.stringify(describe(error))}`)
    // auth-js ignores 401/403/404 from /logout, so check the server really
    // accepted it.
    const logout = exchanges.slice(from).find((e) => e.path.includes('/logout'))
    check(logout, 'signOut: no /logout request')
    check(logout.status === 204, `signOut: POST ${logout.path} answered ${logout.status}, want 204`)
    const { data: s } = await client.getSession()
    check(!s.session, 'signOut: the client still holds a session')
  }

  step = 'getUser after signOut'
  {
    const after = {}
    for (const [name, token] of [
      ['refreshed', refreshed.access_token],
      ['original', session.access_token],
    ]) {
      const { data, error } = await client.getUser(token)
      check(error && !data.user, `getUser with the ${name} access token after signOut succeeded`)
      after[name] = { ...describe(error), sessionMissing: isAuthSessionMissingError(error) }
    }
    results.afterSignOut = after
  }

  step = 'done'
  results.ok = true
  results.requests = exchanges.map((e) => ({ method: e.method, path: e.path, body: e.body, status: e.status }))
}

try {
  await main()
  console.log(JSON.stringify(results))
} catch (err) {
  const why = err instanceof StepError ? err.message : (err && err.stack) || String(err)
  console.error(`authjs compat FAILED at step "${step}" (auth-js ${authjsVersion}): ${why}`)
  console.error('HTTP exchanges so far:')
  for (const e of exchanges) console.error(JSON.stringify(e))
  process.exit(1)
}
