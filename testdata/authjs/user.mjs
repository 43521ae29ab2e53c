// Drives otpgate's PUT /user with the unmodified @supabase/auth-js client
// (see module/authjs_user_test.go): updateUser({data}) merging into
// user_metadata, and a phone change with updateUser({phone}),
// resend({type: 'phone_change'}) and verifyOtp({type: 'phone_change'}); the
// session from before the change is then refreshed and carries the new
// phone.
//
// Usage: node user.mjs <base-url> <phone> <code> <new-phone> <new-code>
//   base-url          the API prefix, e.g. http://127.0.0.1:8080/auth/v1
//   phone, code       a number configured with `test_phone <phone> <code>`
//   new-phone, code   a second test phone, which has no user yet
//
// On success prints one JSON line ({"ok":true,...}) and exits 0; on failure
// names the failed step and every HTTP exchange on stderr and exits 1.
import { GoTrueClient } from '@supabase/auth-js'

const [url, phone, code, newPhone, newCode] = process.argv.slice(2)
if (!url || !phone || !code || !newPhone || !newCode) {
  console.error('usage: node user.mjs <base-url> <phone> <code> <new-phone> <new-code>')
  process.exit(2)
}

const exchanges = []
async function recordingFetch(input, init = {}) {
  const u = new URL(typeof input === 'string' ? input : input.url)
  const ex = { method: init.method || 'GET', path: u.pathname + u.search, body: init.body }
  exchanges.push(ex)
  const res = await fetch(input, init)
  ex.status = res.status
  ex.response = await res.clone().text()
  return res
}

const client = new GoTrueClient({
  url,
  persistSession: false,
  autoRefreshToken: false,
  detectSessionInUrl: false,
  fetch: recordingFetch,
})

let step = 'setup'
function check(cond, msg) {
  if (!cond) throw new Error(msg)
}
function must({ data, error }) {
  if (error) throw new Error(`${error.name} ${error.status} ${error.code}: ${error.message}`)
  return data
}
const digits = (s) => String(s ?? '').replace(/\D/g, '')
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

const out = { ok: false }
try {
  step = 'signInWithOtp'
  must(await client.signInWithOtp({ phone }))
  step = 'verifyOtp'
  const first = must(await client.verifyOtp({ phone, token: code, type: 'sms' }))
  const id = first.user.id
  const before = first.session

  step = 'updateUser data'
  const named = must(await client.updateUser({ data: { name: 'Ada', theme: 'dark' } })).user
  check(same(named.user_metadata, { name: 'Ada', theme: 'dark' }), `metadata ${JSON.stringify(named.user_metadata)}`)

  step = 'updateUser data merge'
  const merged = must(await client.updateUser({ data: { theme: null, plan: 'pro' } })).user
  check(same(merged.user_metadata, { name: 'Ada', plan: 'pro' }), `merged metadata ${JSON.stringify(merged.user_metadata)}`)
  const { data: held } = await client.getSession()
  check(same(held.session.user.user_metadata, merged.user_metadata), 'the client did not keep the updated user')

  step = 'getUser'
  const got = must(await client.getUser()).user
  check(same(got.user_metadata, merged.user_metadata), `getUser metadata ${JSON.stringify(got.user_metadata)}`)

  step = 'updateUser phone'
  const asked = must(await client.updateUser({ phone: newPhone })).user
  check(asked.new_phone === digits(newPhone) && asked.phone === digits(phone), `updateUser phone answered ${JSON.stringify(asked)}`)

  step = 'resend phone_change'
  must(await client.resend({ phone: newPhone, type: 'phone_change' }))

  step = 'verifyOtp phone_change'
  const changed = must(await client.verifyOtp({ phone: newPhone, token: newCode, type: 'phone_change' }))
  check(changed.user.id === id && changed.user.phone === digits(newPhone), `verifyOtp phone_change answered ${JSON.stringify(changed.user)}`)
  check(changed.session && changed.session.access_token, 'verifyOtp phone_change: no session')
  check(same(changed.user.user_metadata, merged.user_metadata), 'the metadata did not move with the user')

  step = 'getUser after the change'
  const after = must(await client.getUser()).user
  check(after.id === id && after.phone === digits(newPhone), `getUser after the change: ${JSON.stringify(after)}`)

  step = 'refreshSession of the session from before the change'
  const continued = must(await client.refreshSession({ refresh_token: before.refresh_token }))
  check(continued.user.id === id && continued.user.phone === digits(newPhone), `refresh answered ${JSON.stringify(continued.user)}`)
  const { data: claims, error: claimsError } = await client.getClaims()
  check(!claimsError && digits(claims.claims.phone) === digits(newPhone), 'the refreshed access token does not carry the new phone')

  step = 'signOut'
  must(await client.signOut())

  out.ok = true
  out.userId = id
  out.phone = after.phone
  console.log(JSON.stringify(out))
} catch (err) {
  console.error(`step ${step} failed: ${err.message}`)
  for (const e of exchanges) console.error(JSON.stringify(e))
  process.exit(1)
}
