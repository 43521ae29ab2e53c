// Drives otpgate's Supabase admin routes with the unmodified
// GoTrueAdminApi of @supabase/auth-js (see module/authjs_admin_test.go).
//
// Usage: node admin.mjs <base-url> <service-key> <phone>
//   base-url     the API prefix, e.g. http://127.0.0.1:8080/auth/v1
//   service-key  the handler's service_key
//   phone        an E.164 number with no user yet
//
// On success prints one JSON line ({"ok":true,...}) and exits 0; on failure
// names the failed step on stderr and exits 1.
import { GoTrueAdminApi } from '@supabase/auth-js'

const [url, serviceKey, phone] = process.argv.slice(2)
if (!url || !serviceKey || !phone) {
  console.error('usage: node admin.mjs <base-url> <service-key> <phone>')
  process.exit(2)
}

const admin = new GoTrueAdminApi({
  url,
  headers: { Authorization: `Bearer ${serviceKey}`, apikey: serviceKey },
})

let step = 'setup'
function check(cond, msg) {
  if (!cond) throw new Error(msg)
}
function must({ data, error }) {
  if (error) throw new Error(`${error.name} ${error.status} ${error.code}: ${error.message}`)
  return data
}

const out = { ok: false }
try {
  step = 'createUser'
  const created = must(await admin.createUser({
    phone: phone.replace(/^\+/, ''),
    phone_confirm: true,
    user_metadata: { name: 'Ada' },
    app_metadata: { roles: ['ops'] },
  })).user
  check(created.id && created.phone_confirmed_at, 'created user lacks id or phone_confirmed_at')
  check(created.app_metadata.roles.join() === 'ops', 'created user lacks its role')
  out.createdId = created.id

  step = 'createUser again'
  const again = await admin.createUser({ phone })
  check(again.error && again.error.status === 422, 'a second user with the same phone was not refused with 422')

  step = 'listUsers'
  const list = must(await admin.listUsers({ page: 1, perPage: 50 }))
  check(list.users.some((u) => u.id === created.id), 'listUsers does not list the new user')
  out.total = list.total

  step = 'getUserById'
  const got = must(await admin.getUserById(created.id)).user
  check(got.user_metadata.name === 'Ada', 'getUserById lost the metadata')

  step = 'updateUserById roles'
  const promoted = must(await admin.updateUserById(created.id, { app_metadata: { roles: ['admin', 'ops'] } })).user
  check(promoted.app_metadata.roles.join() === 'admin,ops', 'roles not updated')

  step = 'updateUserById ban'
  const banned = must(await admin.updateUserById(created.id, { ban_duration: '24h' })).user
  check(banned.banned_until, 'ban_duration did not set banned_until')
  out.bannedUntil = banned.banned_until

  step = 'updateUserById unban'
  const unbanned = must(await admin.updateUserById(created.id, { ban_duration: 'none' })).user
  check(!unbanned.banned_until, 'ban_duration none did not lift the ban')

  step = 'deleteUser'
  const deleted = must(await admin.deleteUser(created.id)).user
  check(deleted.id === created.id, 'deleteUser did not answer the deleted user')

  step = 'getUserById after delete'
  const gone = await admin.getUserById(created.id)
  check(gone.error && gone.error.status === 404, 'the deleted user is still there')

  out.ok = true
  console.log(JSON.stringify(out))
} catch (err) {
  console.error(`step ${step} failed: ${err.message}`)
  process.exit(1)
}
