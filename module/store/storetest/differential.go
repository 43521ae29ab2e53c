package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// Differential runs the operation sequence that program encodes through
// two stores, which must start empty, and fails t at the first result on
// which they disagree: statuses, every field of challenges, users and
// sessions, decisions, and the class of errors (none, store.ErrInvalid,
// store.ErrUnavailable, other).
//
// Every byte string is a program: each operation takes its kind and its
// arguments from the next bytes (zero once they run out), so a fuzzer's
// mutations stay meaningful. The operations act on a few person keys (and
// now and then an invalid one) with an injected clock that only moves
// forward, and pick challenge IDs, session IDs and refresh tokens that
// the sequence handed out earlier, so that consumes, rotations and
// revocations find something to act on.
//
// One difference is not a disagreement: a session record found in one
// store only, when it expired before now. Records outlive their expiry
// only until their wall-clock lifetime ends (see the stores' package
// documentation), and a deleted user's expired sessions may be left to
// that lifetime; no caller can use them either way.
func Differential(t testing.TB, a, b store.Store, program []byte) {
	t.Helper()
	d := &differential{
		t: t, a: a, b: b,
		p:      program,
		now:    Base,
		people: map[store.UserKey]*handedOut{},
	}
	for i := 0; i < maxOps && d.pos < len(d.p); i++ {
		d.now = d.now.Add(d.clockStep())
		op := pick(d, operations...)
		op(d)
	}
}

// RandomProgram returns a program of about n operations drawn from r.
func RandomProgram(r *rand.Rand, n int) []byte {
	b := make([]byte, n*bytesPerOp)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

const (
	maxOps     = 300 // a longer program is cut: the fuzzer's time is better spent on new ones
	bytesPerOp = 8   // about what one operation reads
	traceLines = 40  // operations shown when the stores disagree
)

// carol is the third person of the differential sequences.
const carol store.UserKey = "Y2Fyb2wtdXNlci1rZXktMDA"

var (
	// persons are the keys a sequence acts on. Now and then an operation
	// acts on an invalid key instead: empty, or with braces (which Redis
	// would read as a hash tag); both stores refuse them.
	persons = []store.UserKey{alice, bob, carol}

	// clockSteps are how far the clock moves before an operation, and
	// clockLeaps how far it moves now and then. Every step but 1ms is a
	// multiple of 10s, like every lifetime below, so that a record's
	// wall-clock lifetime (which the stores derive from durations of the
	// injected clock, such as a session's time left) is never much under
	// 10s: a sequence takes far less, so no record ends by the wall clock
	// in one store and not yet in the other.
	clockSteps = []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, time.Millisecond, 10 * time.Second,
		10 * time.Second, 10 * time.Second, time.Minute, 5 * time.Minute}
	clockLeaps = []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour, 25 * time.Hour}

	operations = []func(*differential){
		(*differential).hit, (*differential).hit,
		(*differential).signIn, (*differential).signIn, (*differential).signIn,
		(*differential).beginSend, (*differential).beginSend, (*differential).resend,
		(*differential).abortSend, (*differential).challenge,
		(*differential).attempt, (*differential).attempt, (*differential).attempt,
		(*differential).consume, (*differential).consume, (*differential).consume,
		(*differential).user, (*differential).session,
		(*differential).rotate, (*differential).rotate, (*differential).rotate,
		(*differential).revoke, (*differential).reannounce, (*differential).setOptOut, (*differential).access,
		(*differential).createUser, (*differential).updateUser, (*differential).deleteUser,
		(*differential).listUsers, (*differential).userByID, (*differential).sessions,
		(*differential).phoneChange, (*differential).phoneChange, (*differential).changeSendOp,
		(*differential).claimMove, (*differential).moveUser, (*differential).moved,
	}
)

type differential struct {
	t     testing.TB
	a, b  store.Store
	p     []byte
	pos   int
	now   time.Time
	seq   int
	trace []string

	people  map[store.UserKey]*handedOut
	current store.UserKey // the person most operations act on
	stay    bool          // act on current, whatever the program says
	userIDs []string
	changes []change // phone changes sent, latest last
}

// handedOut is what the sequence gave one person so far.
type handedOut struct {
	challenges []string // stored challenges, latest last
	sessions   []string
	tokens     []string // refresh token hashes
}

func (d *differential) byte() byte {
	if d.pos >= len(d.p) {
		return 0
	}
	b := d.p[d.pos]
	d.pos++
	return b
}

func (d *differential) flag() bool { return d.byte()&1 == 1 }

// rarely is true for about one operation in thirty-two: for invalid
// requests.
func (d *differential) rarely() bool { return d.byte()%32 == 31 }

// clockStep is how far the clock moves before an operation: mostly not or
// a little, about once in sixty-four operations a leap.
func (d *differential) clockStep() time.Duration {
	b := d.byte()
	if b >= 252 {
		return clockLeaps[b-252]
	}
	return clockSteps[int(b)%len(clockSteps)]
}

func pick[T any](d *differential, choices ...T) T { return choices[int(d.byte())%len(choices)] }

func (d *differential) next(prefix string) string {
	d.seq++
	return prefix + strconv.Itoa(d.seq)
}

// person picks whom an operation acts on: mostly the person of the
// operation before, so that sends, attempts, consumes and rotations of one
// person follow each other.
func (d *differential) person() (store.UserKey, *handedOut) {
	u := d.current
	switch b := d.byte(); {
	case d.stay && u != "":
	case b == 255:
		u = ""
	case b == 254:
		u = "tag{with}braces"
	case b%4 == 0 || u == "":
		u = persons[int(b/4)%len(persons)]
		d.current = u
	}
	h := d.people[u]
	if h == nil {
		h = &handedOut{}
		d.people[u] = h
	}
	return u, h
}

// earlier picks one of ids, mostly the latest, sometimes one never handed out.
func (d *differential) earlier(ids []string, none string) string {
	b := d.byte()
	switch {
	case len(ids) == 0 || b%16 == 15:
		return none
	case b%16 < 11:
		return ids[len(ids)-1]
	}
	return ids[int(d.byte())%len(ids)]
}

func (d *differential) log(format string, args ...any) {
	d.trace = append(d.trace, fmt.Sprintf("%s %s", d.now.Sub(Base), fmt.Sprintf(format, args...)))
}

// noteResult adds the start of a result to the last operation's trace line.
func (d *differential) noteResult(o outcome) {
	r := "error " + o.Err
	if o.Err == "" {
		r = render(o.Result)
	}
	if rs := []rune(r); len(rs) > 100 {
		r = string(rs[:100]) + "…"
	}
	d.trace[len(d.trace)-1] += " → " + r
}

// same fails the test when the stores' results differ.
func (d *differential) same(what string, a, b any) {
	d.t.Helper()
	ra, rb := render(a), render(b)
	if ra == rb {
		return
	}
	trace := d.trace
	if len(trace) > traceLines {
		trace = trace[len(trace)-traceLines:]
	}
	d.t.Fatalf("stores disagree on %s\n a: %s\n b: %s\nlast operations (clock since storetest.Base):\n  %s",
		what, ra, rb, strings.Join(trace, "\n  "))
}

// outcome is one store's answer: the result, or the class of its error.
type outcome struct {
	Result any
	Err    string
}

func outcomeOf(res any, err error) outcome {
	switch {
	case err == nil:
		return outcome{Result: res}
	case errors.Is(err, store.ErrInvalid):
		return outcome{Err: "invalid"}
	case errors.Is(err, store.ErrUnavailable):
		return outcome{Err: "unavailable"}
	}
	return outcome{Err: "other"}
}

// call runs op on both stores, compares the outcomes, and returns a's.
func call[R any](d *differential, what string, op func(s store.Store) (R, error)) (R, bool) {
	d.t.Helper()
	ra, ea := op(d.a)
	rb, eb := op(d.b)
	a := outcomeOf(ra, ea)
	d.noteResult(a)
	d.same(what, a, outcomeOf(rb, eb))
	return ra, ea == nil
}

// --- operations ---

func (d *differential) hit() {
	key := pick(d, "ip:192.0.2.1", "ip:2001:db8::/64")
	shape := pick(d, store.Limit{N: 2, Window: 10 * time.Second}, store.Limit{N: 3, Window: time.Minute},
		store.Limit{N: 1, Window: 10 * time.Minute}, store.Limit{N: 3, Window: time.Minute}, store.Limit{N: 0, Window: time.Minute})
	if d.rarely() {
		shape.Window = 0
	}
	d.log("Hit %s %d/%s", key, shape.N, shape.Window)
	call(d, "Hit", func(s store.Store) (store.Decision, error) {
		return s.Hit(d.t.Context(), key, shape.N, shape.Window, d.now)
	})
}

// signIn is a send, an attempt and a consume of one person at one
// instant: the sign-in that the other operations then act on.
func (d *differential) signIn() {
	d.send(false)
	d.stay = true
	d.attempt()
	d.consume()
	d.stay = false
}

func (d *differential) beginSend() { d.send(false) }
func (d *differential) resend()    { d.send(true) }

func (d *differential) send(resend bool) {
	u, h := d.person()
	id := d.next("c")
	req := store.SendRequest{
		User: u, Now: d.now,
		Challenge: store.Challenge{
			ID:         id,
			CodeMAC:    pick(d, []byte("mac of "+id), nil, []byte{0, 0xff, 'x'}),
			Phone:      phone,
			Channel:    pick(d, "sms", "whatsapp", ""),
			CreateUser: d.flag(),
			Metadata:   pick(d, nil, meta, []byte{}),
			Origin:     pick(d, "", store.OriginList, store.OriginSignup),
			SentAt:     d.now,
			ExpiresAt:  d.now.Add(pick(d, 5*time.Minute, 10*time.Minute, time.Hour, time.Hour, 10*time.Second, 0)),
		},
		Keep:        pick(d, 10*time.Minute, 10*time.Minute, time.Hour, 5*time.Minute),
		PhoneLimit:  pick(d, store.Limit{N: 3, Window: 5 * time.Minute}, store.Limit{N: 5, Window: time.Hour}, store.Limit{N: 5, Window: time.Hour}, store.Limit{N: 1, Window: 10 * time.Minute}),
		Cooldown:    pick(d, 0, 10*time.Second, time.Minute),
		RequireUser: d.byte()%4 == 0,
		Resend:      resend,
		ListedOK:    d.flag(),
		Unlimited:   d.byte()%4 == 3,
	}
	switch {
	case d.rarely():
		req.Keep = 0
	case d.rarely():
		req.PhoneLimit.N = 0
	}
	d.log("BeginSend %s %s resend=%v create=%v require=%v listed=%v unlimited=%v keep=%s limit=%d/%s cooldown=%s",
		u, id, resend, req.Challenge.CreateUser, req.RequireUser, req.ListedOK, req.Unlimited, req.Keep,
		req.PhoneLimit.N, req.PhoneLimit.Window, req.Cooldown)
	res, ok := call(d, "BeginSend", func(s store.Store) (store.SendResult, error) {
		return s.BeginSend(d.t.Context(), req)
	})
	if ok && res.Status == store.SendOK {
		h.challenges = append(h.challenges, id)
	}
}

func (d *differential) abortSend() {
	u, h := d.person()
	id := d.earlier(h.challenges, "c-never")
	d.log("AbortSend %s %s", u, id)
	call(d, "AbortSend", func(s store.Store) (struct{}, error) {
		return struct{}{}, s.AbortSend(d.t.Context(), u, id)
	})
}

type challengeRead struct {
	Challenge store.Challenge
	Found     bool
	Failures  int
}

func (d *differential) challenge() {
	u, _ := d.person()
	d.log("Challenge %s", u)
	call(d, "Challenge", func(s store.Store) (challengeRead, error) {
		c, found, failures, err := s.Challenge(d.t.Context(), u)
		return challengeRead{c, found, failures}, err
	})
}

func (d *differential) attempt() {
	u, _ := d.person()
	req := store.AttemptRequest{
		User: u, Now: d.now,
		MaxAttempts: pick(d, 3, 5, 1, 2),
		Lockout: store.Lockout{
			After:  pick(d, 3, 5, 1, 2),
			Base:   pick(d, time.Minute, 15*time.Minute),
			Max:    pick(d, time.Hour, 24*time.Hour),
			Memory: pick(d, 10*time.Minute, time.Hour),
		},
	}
	if d.rarely() {
		req.MaxAttempts = 0
	}
	d.log("Attempt %s max=%d lockout=%+v", u, req.MaxAttempts, req.Lockout)
	call(d, "Attempt", func(s store.Store) (store.AttemptResult, error) {
		return s.Attempt(d.t.Context(), req)
	})
}

// longUserAgent is longer than the 512 bytes a session keeps, with a
// character of two bytes across the cut.
var longUserAgent = strings.Repeat("a", 511) + "é" + strings.Repeat("b", 40)

func (d *differential) consume() {
	u, h := d.person()
	sid := d.next("s")
	req := store.ConsumeRequest{
		User: u, ChallengeID: d.earlier(h.challenges, "c-never"), Now: d.now,
		NewUserID: d.next("u"),
		Session: store.Session{
			ID:        sid,
			CreatedAt: pick(d, d.now, time.Time{}),
			ExpiresAt: d.now.Add(pick(d, 10*time.Minute, time.Hour, 24*time.Hour, 24*time.Hour)),
			IP:        pick(d, "", "192.0.2.7", "2001:db8::1"),
			UserAgent: pick(d, "", "Mozilla/5.0", longUserAgent),
		},
		RefreshHash: "rt-" + sid,
		NewUser:     d.flag(),
		ListedOK:    d.flag(),
	}
	if d.rarely() {
		req.Session.ExpiresAt = d.now
	}
	d.log("Consume %s %s session=%s life=%s hint=%v listed=%v", u, req.ChallengeID, sid,
		req.Session.ExpiresAt.Sub(d.now), req.NewUser, req.ListedOK)
	res, ok := call(d, "Consume", func(s store.Store) (store.ConsumeResult, error) {
		return s.Consume(d.t.Context(), req)
	})
	if ok && res.Status == store.ConsumeOK {
		h.sessions = append(h.sessions, sid)
		h.tokens = append(h.tokens, req.RefreshHash)
		if res.Created {
			d.userIDs = append(d.userIDs, res.User.ID)
		}
	}
}

func (d *differential) user() {
	u, _ := d.person()
	d.log("User %s", u)
	call(d, "User", func(s store.Store) (userRead, error) {
		usr, found, err := s.User(d.t.Context(), u)
		return userRead{usr, found}, err
	})
}

type userRead struct {
	User  store.User
	Found bool
}

type sessionRead struct {
	Session store.Session
	Found   bool
}

func (d *differential) session() {
	u, h := d.person()
	sid := d.earlier(h.sessions, "s-never")
	d.log("Session %s %s", u, sid)
	read := func(s store.Store) outcome {
		sess, found, err := s.Session(d.t.Context(), u, sid)
		return outcomeOf(sessionRead{sess, found}, err)
	}
	a, b := read(d.a), read(d.b)
	ra, okA := a.Result.(sessionRead)
	rb, okB := b.Result.(sessionRead)
	if okA && okB {
		if d.expiredInOne(ra.Found, ra.Session, rb.Found, rb.Session) {
			return
		}
	}
	d.noteResult(a)
	d.same("Session", a, b)
}

// expiredInOne reports whether a session was found in one store only,
// expired by now (see Differential).
func (d *differential) expiredInOne(foundA bool, a store.Session, foundB bool, b store.Session) bool {
	switch {
	case foundA && !foundB:
		return !d.now.Before(a.ExpiresAt)
	case foundB && !foundA:
		return !d.now.Before(b.ExpiresAt)
	}
	return false
}

func (d *differential) rotate() {
	u, h := d.person()
	req := store.RotateRequest{
		User: u, OldHash: d.earlier(h.tokens, "rt-never"), NewHash: d.next("rt"), Now: d.now,
		ReuseInterval: pick(d, 0, 10*time.Second, time.Minute),
		Inactivity:    pick(d, 0, 0, 10*time.Minute, time.Hour),
	}
	if d.rarely() {
		req.NewHash = req.OldHash
	}
	d.log("Rotate %s %s -> %s reuse=%s inactivity=%s", u, req.OldHash, req.NewHash, req.ReuseInterval, req.Inactivity)
	res, ok := call(d, "Rotate", func(s store.Store) (store.RotateResult, error) {
		return s.Rotate(d.t.Context(), req)
	})
	if ok && res.Status == store.RotateOK {
		h.tokens = append(h.tokens, req.NewHash)
	}
}

func (d *differential) revoke() {
	u, h := d.person()
	scope := pick(d, store.RevokeOne, store.RevokeAll, store.RevokeOthers, store.RevokeOne, store.RevokeOthers)
	if d.rarely() {
		scope = store.RevokeScope(9)
	}
	sid := d.earlier(h.sessions, "s-never")
	d.log("Revoke %s %s %s", u, scope, sid)
	call(d, "Revoke", func(s store.Store) ([]string, error) {
		return s.Revoke(d.t.Context(), u, scope, sid, d.now)
	})
}

func (d *differential) reannounce() {
	u, _ := d.person()
	d.log("Reannounce %s", u)
	call(d, "Reannounce", func(s store.Store) ([]string, error) {
		return s.Reannounce(d.t.Context(), u, d.now)
	})
}

func (d *differential) setOptOut() {
	u, _ := d.person()
	out := d.byte()%4 == 0
	d.log("SetOptOut %s %v", u, out)
	call(d, "SetOptOut", func(s store.Store) (struct{}, error) {
		return struct{}{}, s.SetOptOut(d.t.Context(), u, out, d.now)
	})
}

type accessRead struct {
	Session      store.Session
	SessionFound bool
	User         store.User
	UserFound    bool
}

func (d *differential) access() {
	u, h := d.person()
	sid := d.earlier(h.sessions, "s-never")
	d.log("Access %s %s", u, sid)
	read := func(s store.Store) outcome {
		sess, sok, usr, uok, err := s.Access(d.t.Context(), u, sid)
		return outcomeOf(accessRead{sess, sok, usr, uok}, err)
	}
	a, b := read(d.a), read(d.b)
	ra, okA := a.Result.(accessRead)
	rb, okB := b.Result.(accessRead)
	if okA && okB {
		if d.expiredInOne(ra.SessionFound, ra.Session, rb.SessionFound, rb.Session) {
			ra.Session, ra.SessionFound = store.Session{}, false
			rb.Session, rb.SessionFound = store.Session{}, false
			a.Result, b.Result = ra, rb
		}
	}
	d.noteResult(a)
	d.same("Access", a, b)
}

type createRead struct {
	User    store.User
	Created bool
}

func (d *differential) createUser() {
	u, _ := d.person()
	req := store.CreateUserRequest{
		User: u, ID: d.next("a"), Phone: phone, Now: d.now,
		Roles:     pick(d, nil, []string{"staff"}, []string{"b", "a", "a"}, []string{}),
		Metadata:  pick(d, nil, meta),
		Confirmed: d.flag(),
	}
	if d.rarely() {
		req.Roles = []string{"x,y"}
	}
	d.log("CreateUser %s %s roles=%q confirmed=%v", u, req.ID, req.Roles, req.Confirmed)
	res, ok := call(d, "CreateUser", func(s store.Store) (createRead, error) {
		usr, created, err := s.CreateUser(d.t.Context(), req)
		return createRead{usr, created}, err
	})
	if ok && res.Created {
		d.userIDs = append(d.userIDs, res.User.ID)
	}
}

func (d *differential) updateUser() {
	u, _ := d.person()
	later, earlier := d.now.Add(time.Hour), d.now.Add(-time.Hour)
	var zero time.Time
	noMeta, newMeta := []byte{}, []byte(`{"plan":"paid"}`)
	upd := store.UserUpdate{
		Now:         d.now,
		Roles:       pick(d, nil, &[]string{}, &[]string{"staff", "admin", "staff"}),
		BannedUntil: pick(d, nil, nil, &zero, &later, &earlier),
		Metadata:    pick(d, nil, &noMeta, &newMeta),
		Confirmed:   d.flag(),
	}
	if d.rarely() {
		upd.Roles = &[]string{""}
	}
	d.log("UpdateUser %s roles=%v banned=%v meta=%v confirmed=%v", u, upd.Roles != nil, upd.BannedUntil != nil, upd.Metadata != nil, upd.Confirmed)
	call(d, "UpdateUser", func(s store.Store) (userRead, error) {
		usr, found, err := s.UpdateUser(d.t.Context(), u, upd)
		return userRead{usr, found}, err
	})
}

type deleteRead struct {
	User    store.User
	Revoked []string
	Found   bool
}

func (d *differential) deleteUser() {
	u, _ := d.person()
	d.log("DeleteUser %s", u)
	call(d, "DeleteUser", func(s store.Store) (deleteRead, error) {
		usr, revoked, found, err := s.DeleteUser(d.t.Context(), u, d.now)
		return deleteRead{usr, revoked, found}, err
	})
}

type listRead struct {
	Users []store.UserEntry
	Total int
}

// listUsers lists every user, then one page. The Redis store's total
// counts index entries it has not yet found stale (see its ListUsers), and
// reading the whole index removes them all, so the page is compared after
// a whole listing.
func (d *differential) listUsers() {
	offset, limit := pick(d, 0, 1, 2, 0), pick(d, 1, 2, 10, 0)
	if d.rarely() {
		offset = -1
	}
	d.log("ListUsers all, then %d+%d", offset, limit)
	list := func(offset, limit int) func(s store.Store) (listRead, error) {
		return func(s store.Store) (listRead, error) {
			users, total, err := s.ListUsers(d.t.Context(), offset, limit)
			return listRead{users, total}, err
		}
	}
	call(d, "ListUsers (all)", list(0, 1000))
	call(d, "ListUsers (page)", list(offset, limit))
}

type entryRead struct {
	Entry store.UserEntry
	Found bool
}

func (d *differential) userByID() {
	id := d.earlier(d.userIDs, pick(d, "u-never", "", "with:colon"))
	d.log("UserByID %q", id)
	call(d, "UserByID", func(s store.Store) (entryRead, error) {
		e, found, err := s.UserByID(d.t.Context(), id)
		return entryRead{e, found}, err
	})
}

func (d *differential) sessions() {
	u, _ := d.person()
	d.log("Sessions %s", u)
	call(d, "Sessions", func(s store.Store) ([]store.Session, error) {
		return s.Sessions(d.t.Context(), u, d.now)
	})
}

// --- comparison ---

var timeType = reflect.TypeFor[time.Time]()

// render writes v for comparison: times as the offset from Base (so that
// location and monotonic readings do not count), nil and empty slices
// alike.
func render(v any) string {
	var b strings.Builder
	renderValue(&b, reflect.ValueOf(v))
	return b.String()
}

func renderValue(b *strings.Builder, v reflect.Value) {
	if !v.IsValid() {
		b.WriteString("nil")
		return
	}
	if v.Type() == timeType {
		t := v.Interface().(time.Time)
		if t.IsZero() {
			b.WriteString("zero")
		} else {
			b.WriteString("Base+" + t.Sub(Base).String())
		}
		return
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		renderValue(b, v.Elem())
	case reflect.Struct:
		b.WriteString(v.Type().Name() + "{")
		for i := range v.NumField() {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(v.Type().Field(i).Name + ":")
			renderValue(b, v.Field(i))
		}
		b.WriteString("}")
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			fmt.Fprintf(b, "%q", v.Bytes())
			return
		}
		b.WriteString("[")
		for i := range v.Len() {
			if i > 0 {
				b.WriteString(" ")
			}
			renderValue(b, v.Index(i))
		}
		b.WriteString("]")
	default:
		fmt.Fprintf(b, "%v", v.Interface())
	}
}
