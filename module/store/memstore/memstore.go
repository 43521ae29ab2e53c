// Package memstore keeps otpgate's state in the memory of one process: the
// default store, for a single gateway. It follows the Redis store record for
// record so that both pass the same conformance suite.
//
// Two clocks are at work, as in Redis. Decisions (limits, cooldowns, expiry
// of challenges and sessions) use the `now` the caller passes, so tests can
// inject time. Records also carry a wall-clock lifetime, the equivalent of a
// Redis key TTL, so that memory stays bounded and reads that take no `now`
// (Challenge, Session, User, FirstSeen) still see old records disappear.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/module/store"
)

// sweepEvery is how often (wall clock) a write also drops every expired
// record, so people who never come back do not stay in memory.
const sweepEvery = time.Minute

// Store is the in-memory store. The zero value is not usable; call New.
type Store struct {
	// clock is the wall clock behind record lifetimes; tests replace it.
	clock func() time.Time

	mu        sync.Mutex
	limits    map[string]*eventLog
	people    map[store.UserKey]*person
	seen      map[string]time.Time // FirstSeen key -> wall expiry
	claims    map[string]string    // Claim key -> value
	feed      map[string]time.Time // revoked session ID -> announced at
	subs      map[*subscriber]struct{}
	nextSweep time.Time

	// index lists every user as "<id>:<key>", sorted bytewise: the members
	// of the Redis store's index, so that ListUsers pages alike.
	index []string
	byID  map[string]store.UserKey

	// began is the store's epoch: its data lives as long as the process.
	began time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		clock:  time.Now,
		limits: make(map[string]*eventLog),
		people: make(map[store.UserKey]*person),
		seen:   make(map[string]time.Time),
		feed:   make(map[string]time.Time),
		subs:   make(map[*subscriber]struct{}),
		byID:   make(map[string]store.UserKey),
		began:  time.Now(),
	}
}

// eventLog is a sliding log: the times of the events still in the window.
type eventLog struct {
	events []event
	wall   time.Time // wall expiry, renewed on every recorded event
}

type event struct {
	id string // lets AbortSend take back one send
	at time.Time
}

// person is everything one UserKey owns (in Redis: one hash slot).
type person struct {
	challenge *challengeRec
	sends     *eventLog
	cooldown  *cooldownRec
	failures  *failureRec
	optedOut  bool
	user      *store.User
	sessions  map[string]*sessionRec
	tokens    map[string]*tokenRec
	// moved holds the forwards of users that moved away (by user ID), in
	// Redis: the key otpgate:{<user>}:moved.
	moved map[string]*forwardRec
}

// forwardRec is a forward to the key a user moved to, with the move's
// record until the move finished (in this store a move never stops
// halfway, so rec is always nil once MoveUser returns).
type forwardRec struct {
	to   store.UserKey
	rec  *moveRec
	wall time.Time
}

// moveRec is what a move takes from the old key: the user, its sessions
// and refresh tokens.
type moveRec struct {
	user     store.User
	sessions map[string]*sessionRec
	tokens   map[string]*tokenRec
}

type challengeRec struct {
	c         store.Challenge
	keepUntil time.Time
	wall      time.Time
}

type cooldownRec struct {
	until  time.Time
	sendID string // only the send that started the cooldown may refund it
	wall   time.Time
}

type failureRec struct {
	n     int       // failures since the last lock
	last  time.Time // last failure
	locks int       // locks so far
	until time.Time // end of the current (or last) lock
	wall  time.Time
}

type sessionRec struct {
	s    store.Session
	wall time.Time
}

type tokenRec struct {
	sessionID string
	usedAt    time.Time // zero while active
	wall      time.Time
}

// alive reports whether a record with wall expiry exp still exists at wall.
func alive(exp, wall time.Time) bool { return wall.Before(exp) }

// ms gives times the millisecond precision and location of the Redis store,
// so that results compare equal across stores.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli())
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func cloneChallenge(c store.Challenge) store.Challenge {
	c.CodeMAC = cloneBytes(c.CodeMAC)
	c.Metadata = cloneBytes(c.Metadata)
	return c
}

func cloneUser(u store.User) store.User {
	u.Metadata = cloneBytes(u.Metadata)
	u.Roles = slices.Clone(u.Roles)
	return u
}

// maxListLimit caps a ListUsers page, as the Redis store does.
const maxListLimit = 10_000

// maxUserAgent is the longest User-Agent a session keeps.
const maxUserAgent = 512

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkUser refuses a user key the Redis store refuses (it is the hash tag
// of the person's keys there), to keep both stores alike.
func checkUser(u store.UserKey) error {
	if u == "" || strings.ContainsAny(string(u), "{}") {
		return fmt.Errorf("%w: user key empty or with braces", store.ErrInvalid)
	}
	return nil
}

func indexMember(id string, key store.UserKey) string { return id + ":" + string(key) }

// indexAdd and indexRemove keep s.index and s.byID; s.mu is held.
func (s *Store) indexAdd(id string, key store.UserKey) {
	m := indexMember(id, key)
	if i, found := slices.BinarySearch(s.index, m); !found {
		s.index = slices.Insert(s.index, i, m)
	}
	s.byID[id] = key
}

func (s *Store) indexRemove(id string, key store.UserKey) {
	if i, found := slices.BinarySearch(s.index, indexMember(id, key)); found {
		s.index = slices.Delete(s.index, i, i+1)
	}
	if s.byID[id] == key {
		delete(s.byID, id)
	}
}

// person returns the live view of key's records at wall, dropping expired
// ones; create adds an empty person when there is none.
func (s *Store) person(key store.UserKey, wall time.Time, create bool) *person {
	p := s.people[key]
	if p == nil {
		if !create {
			return nil
		}
		p = &person{sessions: make(map[string]*sessionRec), tokens: make(map[string]*tokenRec), moved: make(map[string]*forwardRec)}
		s.people[key] = p
		return p
	}
	p.expire(wall)
	return p
}

func (p *person) expire(wall time.Time) {
	if p.challenge != nil && !alive(p.challenge.wall, wall) {
		p.challenge = nil
	}
	if p.sends != nil && !alive(p.sends.wall, wall) {
		p.sends = nil
	}
	if p.cooldown != nil && !alive(p.cooldown.wall, wall) {
		p.cooldown = nil
	}
	if p.failures != nil && !alive(p.failures.wall, wall) {
		p.failures = nil
	}
	for id, r := range p.sessions {
		if !alive(r.wall, wall) {
			delete(p.sessions, id)
		}
	}
	for h, r := range p.tokens {
		if !alive(r.wall, wall) {
			delete(p.tokens, h)
		}
	}
	for id, f := range p.moved {
		if !alive(f.wall, wall) {
			delete(p.moved, id)
		}
	}
}

func (p *person) empty() bool {
	return p.challenge == nil && p.sends == nil && p.cooldown == nil && p.failures == nil &&
		!p.optedOut && p.user == nil && len(p.sessions) == 0 && len(p.tokens) == 0 && len(p.moved) == 0
}

// write is called at the start of every mutation, under s.mu: it reads the
// wall clock once and, now and then, drops every expired record.
func (s *Store) write() time.Time {
	wall := s.clock()
	if wall.Before(s.nextSweep) {
		return wall
	}
	s.nextSweep = wall.Add(sweepEvery)
	for key, p := range s.people {
		p.expire(wall)
		if p.empty() {
			delete(s.people, key)
		}
	}
	for key, l := range s.limits {
		if !alive(l.wall, wall) {
			delete(s.limits, key)
		}
	}
	for key, exp := range s.seen {
		if !alive(exp, wall) {
			delete(s.seen, key)
		}
	}
	return wall
}

// admit applies the sliding-log rule: it drops events that left the window
// (at or before now-window) and, when fewer than limit remain, reports true.
// Otherwise retry is when enough old events leave for one more to fit.
func (l *eventLog) admit(limit int, window time.Duration, now time.Time) (ok bool, remaining int, retry time.Duration) {
	cut := now.Add(-window)
	l.events = slices.DeleteFunc(l.events, func(e event) bool { return !e.at.After(cut) })
	n := len(l.events)
	if n < limit {
		return true, limit - n - 1, 0
	}
	if limit < 1 {
		return false, 0, window
	}
	times := make([]time.Time, n)
	for i, e := range l.events {
		times[i] = e.at
	}
	slices.SortFunc(times, time.Time.Compare)
	return false, 0, times[n-limit].Add(window).Sub(now)
}

func (l *eventLog) record(id string, now time.Time, window time.Duration, wall time.Time) {
	l.events = append(l.events, event{id: id, at: ms(now)})
	l.wall = wall.Add(window)
}

// Hit implements store.Store.
func (s *Store) Hit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (store.Decision, error) {
	if err := store.CheckLimit(window); err != nil {
		return store.Decision{}, err
	}
	// The limit's shape is part of the key, as in the Redis store: two
	// limits on one key (two sites counting one IP) must not trim each
	// other's logs.
	key = fmt.Sprintf("%s\x00%d/%d", key, limit, window.Milliseconds())
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	l := s.limits[key]
	if l == nil || !alive(l.wall, wall) {
		l = &eventLog{}
		s.limits[key] = l
	}
	ok, remaining, retry := l.admit(limit, window, now)
	if !ok {
		return store.Decision{RetryAfter: retry}, nil
	}
	l.record("", now, window, wall)
	return store.Decision{Allowed: true, Remaining: remaining}, nil
}

// BeginSend implements store.Store.
func (s *Store) BeginSend(ctx context.Context, req store.SendRequest) (store.SendResult, error) {
	if err := checkUser(req.User); err != nil {
		return store.SendResult{}, err
	}
	if err := req.Check(); err != nil {
		return store.SendResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, true)

	if p.optedOut {
		return store.SendResult{Status: store.SendOptedOut}, nil
	}
	if !req.Unlimited {
		if p.cooldown != nil && now.Before(p.cooldown.until) {
			return store.SendResult{Status: store.SendCooldown, RetryAfter: p.cooldown.until.Sub(now)}, nil
		}
		if p.sends == nil {
			p.sends = &eventLog{}
		}
		ok, _, retry := p.sends.admit(req.PhoneLimit.N, req.PhoneLimit.Window, now)
		if !ok {
			return store.SendResult{Status: store.SendPhoneLimited, RetryAfter: retry}, nil
		}

		p.sends.record(req.Challenge.ID, now, req.PhoneLimit.Window, wall)
		if req.Cooldown > 0 {
			p.cooldown = &cooldownRec{until: now.Add(req.Cooldown), sendID: req.Challenge.ID, wall: wall.Add(req.Cooldown)}
		}
	}
	if req.RequireUser && !p.known(req.ListedOK) {
		return store.SendResult{Status: store.SendUnknownUser}, nil
	}
	changeOf := req.Challenge.ChangeOf
	if req.Resend {
		changeOf = ""
		if old := p.challenge; old != nil && now.Before(old.keepUntil) {
			changeOf = old.c.ChangeOf
		}
	}
	if changeOf != "" && p.user != nil && p.user.ID != changeOf {
		return store.SendResult{Status: store.SendTaken}, nil
	}
	if p.user != nil && p.user.Banned(now) {
		return store.SendResult{Status: store.SendBanned}, nil
	}
	if p.failures != nil && now.Before(p.failures.until) {
		return store.SendResult{Status: store.SendLocked}, nil
	}

	c := cloneChallenge(req.Challenge)
	if req.Resend {
		old := p.challenge
		if old == nil || !now.Before(old.keepUntil) {
			return store.SendResult{Status: store.SendNoChallenge}, nil
		}
		if c.Channel == "" {
			c.Channel = old.c.Channel
		}
		c.CreateUser = old.c.CreateUser
		c.Metadata = cloneBytes(old.c.Metadata)
		c.Origin = old.c.Origin
		c.ChangeOf = old.c.ChangeOf
		c.ChangeFrom = old.c.ChangeFrom
	}
	c.Attempts = 0
	c.SentAt = ms(c.SentAt)
	c.ExpiresAt = ms(c.ExpiresAt)
	p.challenge = &challengeRec{c: c, keepUntil: now.Add(req.Keep), wall: wall.Add(req.Keep)}
	return store.SendResult{Status: store.SendOK, Challenge: cloneChallenge(c)}, nil
}

// AbortSend implements store.Store.
func (s *Store) AbortSend(ctx context.Context, user store.UserKey, challengeID string) error {
	if err := checkUser(user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil || challengeID == "" {
		return nil
	}
	if p.challenge != nil && p.challenge.c.ID == challengeID {
		p.challenge = nil
	}
	if p.cooldown != nil && p.cooldown.sendID == challengeID {
		p.cooldown = nil
	}
	if p.sends != nil {
		p.sends.events = slices.DeleteFunc(p.sends.events, func(e event) bool { return e.id == challengeID })
	}
	return nil
}

// Challenge implements store.Store.
func (s *Store) Challenge(ctx context.Context, user store.UserKey) (store.Challenge, bool, int, error) {
	if err := checkUser(user); err != nil {
		return store.Challenge{}, false, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return store.Challenge{}, false, 0, nil
	}
	failures := 0
	if p.failures != nil {
		failures = p.failures.n
	}
	if p.challenge == nil {
		return store.Challenge{}, false, failures, nil
	}
	c := cloneChallenge(p.challenge.c)
	c.HasUser = p.user != nil
	return c, true, failures, nil
}

// known reports whether the person has a user that counts as existing: a
// user of the list only while listedOK.
func (p *person) known(listedOK bool) bool {
	return p.user != nil && (p.user.Origin != store.OriginList || listedOK)
}

// current returns the challenge with id unless it is gone by now.
func (p *person) current(id string, now time.Time) *challengeRec {
	c := p.challenge
	if c == nil || c.c.ID != id || !now.Before(c.keepUntil) {
		return nil
	}
	return c
}

// Attempt implements store.Store.
func (s *Store) Attempt(ctx context.Context, req store.AttemptRequest) (store.AttemptResult, error) {
	if err := checkUser(req.User); err != nil {
		return store.AttemptResult{}, err
	}
	if err := req.Check(); err != nil {
		return store.AttemptResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, false)
	if p == nil {
		return store.AttemptResult{Status: store.AttemptNoChallenge}, nil
	}

	var f failureRec
	if p.failures != nil {
		f = *p.failures
	}
	if now.Before(f.until) {
		return store.AttemptResult{Status: store.AttemptLocked, Locked: f.until.Sub(now)}, nil
	}
	memory := req.Lockout.Memory
	if now.Sub(f.last) >= memory {
		f.n = 0
	}
	if now.Sub(later(f.last, f.until)) >= memory {
		f.locks = 0
	}

	c := p.challenge
	switch {
	case c == nil || !now.Before(c.keepUntil):
		return store.AttemptResult{Status: store.AttemptNoChallenge}, nil
	case !now.Before(c.c.ExpiresAt):
		return store.AttemptResult{Status: store.AttemptExpired}, nil
	case c.c.Attempts >= req.MaxAttempts:
		return store.AttemptResult{Status: store.AttemptNoChallenge}, nil
	}
	c.c.Attempts++
	f.n++
	res := store.AttemptResult{Status: store.AttemptOK, Failures: f.n}
	if f.n >= req.Lockout.After {
		res.Locked = lockFor(req.Lockout, f.locks)
		f.locks++
		f.n = 0
		f.until = now.Add(res.Locked)
	}
	f.last = now
	f.wall = wall.Add(max(f.until.Sub(now), 0) + memory)
	p.failures = &f
	res.Challenge = cloneChallenge(c.c)
	res.Challenge.HasUser = p.user != nil
	return res, nil
}

// lockFor is the length of a person's next lock after locks earlier ones:
// Base doubled for each, at most Max.
func lockFor(l store.Lockout, locks int) time.Duration {
	d := l.Base
	for range locks {
		if d >= l.Max/2 {
			return l.Max
		}
		d *= 2
	}
	return min(d, l.Max)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Consume implements store.Store.
func (s *Store) Consume(ctx context.Context, req store.ConsumeRequest) (store.ConsumeResult, error) {
	if err := checkUser(req.User); err != nil {
		return store.ConsumeResult{}, err
	}
	if err := req.Check(); err != nil {
		return store.ConsumeResult{}, err
	}
	if err := store.CheckUserID(req.NewUserID); err != nil {
		return store.ConsumeResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, true)

	c := p.current(req.ChallengeID, now)
	if c == nil || !now.Before(c.c.ExpiresAt) {
		return store.ConsumeResult{Status: store.ConsumeGone}, nil
	}
	p.challenge = nil

	created := false
	switch {
	case p.user == nil:
		if !c.c.CreateUser {
			return store.ConsumeResult{Status: store.ConsumeNoUser}, nil
		}
		origin := c.c.Origin
		if origin == "" {
			origin = store.OriginSignup
		}
		p.user = &store.User{
			ID:        req.NewUserID,
			Phone:     c.c.Phone,
			CreatedAt: now,
			Metadata:  cloneBytes(c.c.Metadata),
			Origin:    origin,
		}
		s.indexAdd(req.NewUserID, req.User)
		created = true
	case !p.known(req.ListedOK):
		return store.ConsumeResult{Status: store.ConsumeNoUser}, nil
	case p.user.Banned(now):
		return store.ConsumeResult{Status: store.ConsumeBanned, User: cloneUser(*p.user)}, nil
	}
	p.failures = nil
	u := p.user
	if u.ConfirmedAt.IsZero() {
		u.ConfirmedAt = now
	}
	u.UpdatedAt = now
	u.LastSignInAt = now

	p.addSession(req.Session, req.User, u.ID, req.RefreshHash, now, wall)

	return store.ConsumeResult{Status: store.ConsumeOK, User: cloneUser(*u), Created: created}, nil
}

// User implements store.Store.
func (s *Store) User(ctx context.Context, user store.UserKey) (store.User, bool, error) {
	if err := checkUser(user); err != nil {
		return store.User{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil || p.user == nil {
		return store.User{}, false, nil
	}
	return cloneUser(*p.user), true, nil
}

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, user store.UserKey, sessionID string) (store.Session, bool, error) {
	if err := checkUser(user); err != nil {
		return store.Session{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return store.Session{}, false, nil
	}
	r := p.sessions[sessionID]
	if r == nil {
		return store.Session{}, false, nil
	}
	return r.s, true, nil
}

// Rotate implements store.Store.
func (s *Store) Rotate(ctx context.Context, req store.RotateRequest) (store.RotateResult, error) {
	if err := checkUser(req.User); err != nil {
		return store.RotateResult{}, err
	}
	if err := req.Check(); err != nil {
		return store.RotateResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, false)
	if p == nil {
		return store.RotateResult{Status: store.RotateNotFound}, nil
	}
	t := p.tokens[req.OldHash]
	if t == nil {
		return store.RotateResult{Status: store.RotateNotFound}, nil
	}
	r := p.sessions[t.sessionID]
	if r == nil || !r.s.Active(now) {
		return store.RotateResult{Status: store.RotateNotFound}, nil
	}
	if !t.usedAt.IsZero() && (req.ReuseInterval <= 0 || now.Sub(t.usedAt) > req.ReuseInterval) {
		r.s.RevokedAt = now
		return store.RotateResult{Status: store.RotateReused, Session: r.s}, nil
	}
	if req.Inactivity > 0 {
		last := r.s.RefreshedAt
		if last.IsZero() {
			last = r.s.CreatedAt
		}
		if now.Sub(last) > req.Inactivity {
			r.s.RevokedAt = now
			return store.RotateResult{Status: store.RotateIdle, Session: r.s}, nil
		}
	}
	if t.usedAt.IsZero() {
		t.usedAt = now
	}
	r.s.RefreshedAt = now
	p.tokens[req.NewHash] = &tokenRec{sessionID: t.sessionID, wall: r.wall}
	res := store.RotateResult{Status: store.RotateOK, Session: r.s}
	if p.user != nil {
		res.User = cloneUser(*p.user)
	}
	return res, nil
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, user store.UserKey, scope store.RevokeScope, sessionID string, now time.Time) ([]string, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	if scope != store.RevokeOne && scope != store.RevokeAll && scope != store.RevokeOthers {
		return nil, store.ErrInvalid
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil {
		return nil, nil
	}
	var revoked []string
	for id, r := range p.sessions {
		switch {
		case scope == store.RevokeOne && id != sessionID,
			scope == store.RevokeOthers && id == sessionID,
			!r.s.Active(now):
			continue
		}
		r.s.RevokedAt = now
		revoked = append(revoked, id)
	}
	slices.Sort(revoked)
	s.announce(revoked, now)
	return revoked, nil
}

// Reannounce implements store.Store.
func (s *Store) Reannounce(ctx context.Context, user store.UserKey, now time.Time) ([]string, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil {
		return nil, nil
	}
	since := now.Add(-store.AnnounceRetention)
	var ids []string
	for id, r := range p.sessions {
		if !r.s.RevokedAt.IsZero() && !r.s.RevokedAt.Before(since) && now.Before(r.s.ExpiresAt) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	s.announce(ids, now)
	return ids, nil
}

// Announce implements store.Store.
func (s *Store) Announce(ctx context.Context, sessionIDs []string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announce(sessionIDs, ms(now))
	return nil
}

// announce logs ids for replay and queues them to every subscriber; s.mu is held.
func (s *Store) announce(ids []string, now time.Time) {
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		s.feed[id] = now
	}
	cut := now.Add(-store.AnnounceRetention)
	for id, at := range s.feed {
		if !at.After(cut) {
			delete(s.feed, id)
		}
	}
	for sub := range s.subs {
		sub.push(slices.Clone(ids))
	}
}

// subscriber is one Subscribe call; Announce queues to it without blocking,
// and the Subscribe goroutine delivers in order.
type subscriber struct {
	mu      sync.Mutex
	pending [][]string
	wake    chan struct{}
}

func (sub *subscriber) push(ids []string) {
	sub.mu.Lock()
	sub.pending = append(sub.pending, ids)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscriber) take() [][]string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	p := sub.pending
	sub.pending = nil
	return p
}

// Subscribe implements store.Store. The replay window is measured from the
// wall clock (time.Now), like the Redis store's, since the feed outlives any
// one request's `now`. The connection of an in-process feed never breaks, so
// Healthy(false) is never reported.
func (s *Store) Subscribe(ctx context.Context, retain time.Duration, h store.FeedHandler) {
	sub := &subscriber{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	replay := s.replay(time.Now().Add(-retain))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()

	h.Epoch(s.began)
	if len(replay) > 0 {
		h.Revoked(replay)
	}
	h.Healthy(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.wake:
			for _, ids := range sub.take() {
				h.Revoked(ids)
			}
		}
	}
}

// replay lists announcements made at or after since, oldest first (ties by
// ID, the order of a Redis sorted set); s.mu is held.
func (s *Store) replay(since time.Time) []string {
	var ids []string
	for id, at := range s.feed {
		if !at.Before(since) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := s.feed[a].Compare(s.feed[b]); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a), []byte(b))
	})
	return ids
}

// SetOptOut implements store.Store. An opt-out never expires: only the
// owner's START clears it.
func (s *Store) SetOptOut(ctx context.Context, user store.UserKey, out bool, now time.Time) error {
	if err := checkUser(user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, out)
	if p != nil {
		p.optedOut = out
	}
	return nil
}

// FirstSeen implements store.Store. The interface gives it no `now`, so ttl
// runs on the wall clock.
func (s *Store) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, store.ErrInvalid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	if exp, ok := s.seen[key]; ok && alive(exp, wall) {
		return false, nil
	}
	s.seen[key] = wall.Add(ttl)
	return true, nil
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, key, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims == nil {
		s.claims = map[string]string{}
	}
	if v, ok := s.claims[key]; ok {
		return v, nil
	}
	s.claims[key] = value
	return value, nil
}

// Forget implements store.Store.
func (s *Store) Forget(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, key)
	return nil
}

// Access implements store.Store.
func (s *Store) Access(ctx context.Context, user store.UserKey, sessionID string) (store.Session, bool, store.User, bool, error) {
	if err := checkUser(user); err != nil {
		return store.Session{}, false, store.User{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return store.Session{}, false, store.User{}, false, nil
	}
	var (
		sess   store.Session
		sok    bool
		u      store.User
		userOK bool
	)
	if r := p.sessions[sessionID]; r != nil {
		sess, sok = r.s, true
	}
	if p.user != nil {
		u, userOK = cloneUser(*p.user), true
	}
	return sess, sok, u, userOK, nil
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, req store.CreateUserRequest) (store.User, bool, error) {
	if err := checkUser(req.User); err != nil {
		return store.User{}, false, err
	}
	if err := req.Check(); err != nil {
		return store.User{}, false, err
	}
	if err := store.CheckUserID(req.ID); err != nil {
		return store.User{}, false, err
	}
	roles, err := store.NormRoles(req.Roles)
	if err != nil {
		return store.User{}, false, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, true)
	if p.user != nil {
		return cloneUser(*p.user), false, nil
	}
	u := &store.User{
		ID:        req.ID,
		Phone:     req.Phone,
		CreatedAt: now,
		UpdatedAt: now,
		Metadata:  cloneBytes(req.Metadata),
		Roles:     roles,
		Origin:    store.OriginAdmin,
	}
	if req.Confirmed {
		u.ConfirmedAt = now
	}
	p.user = u
	s.indexAdd(u.ID, req.User)
	return cloneUser(*u), true, nil
}

// UpdateUser implements store.Store.
func (s *Store) UpdateUser(ctx context.Context, user store.UserKey, upd store.UserUpdate) (store.User, bool, error) {
	if err := checkUser(user); err != nil {
		return store.User{}, false, err
	}
	if err := upd.Check(); err != nil {
		return store.User{}, false, err
	}
	var roles []string
	if upd.Roles != nil {
		var err error
		if roles, err = store.NormRoles(*upd.Roles); err != nil {
			return store.User{}, false, err
		}
	}
	now := ms(upd.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil || p.user == nil {
		return store.User{}, false, nil
	}
	u := p.user
	if upd.Roles != nil {
		u.Roles = roles
	}
	if upd.BannedUntil != nil {
		u.BannedUntil = ms(*upd.BannedUntil)
	}
	if upd.Metadata != nil {
		u.Metadata = cloneBytes(*upd.Metadata)
	}
	if upd.Confirmed && u.ConfirmedAt.IsZero() {
		u.ConfirmedAt = now
	}
	u.UpdatedAt = now
	return cloneUser(*u), true, nil
}

// DeleteUser implements store.Store. The opt-out marker and the send log
// stay: they protect the phone's owner, whoever signs in with it next.
func (s *Store) DeleteUser(ctx context.Context, user store.UserKey, now time.Time) (store.User, []string, bool, error) {
	if err := checkUser(user); err != nil {
		return store.User{}, nil, false, err
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil || p.user == nil {
		return store.User{}, nil, false, nil
	}
	u := *p.user
	var active []string
	for id, r := range p.sessions {
		if r.s.Active(now) {
			active = append(active, id)
		}
	}
	slices.Sort(active)
	s.indexRemove(u.ID, user)
	p.user = nil
	p.challenge = nil
	p.failures = nil
	p.cooldown = nil
	p.sessions = make(map[string]*sessionRec)
	p.tokens = make(map[string]*tokenRec)
	if p.empty() {
		delete(s.people, user)
	}
	return u, active, true, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context, offset, limit int) ([]store.UserEntry, int, error) {
	if offset < 0 || limit < 0 {
		return nil, 0, fmt.Errorf("%w: negative offset or limit", store.ErrInvalid)
	}
	limit = min(limit, maxListLimit)
	s.mu.Lock()
	defer s.mu.Unlock()
	total := len(s.index)
	var out []store.UserEntry
	for i := offset; i < total && len(out) < limit; i++ {
		m := s.index[i]
		key := store.UserKey(m[strings.IndexByte(m, ':')+1:])
		if p := s.people[key]; p != nil && p.user != nil {
			out = append(out, store.UserEntry{Key: key, User: cloneUser(*p.user)})
		}
	}
	return out, total, nil
}

// UserByID implements store.Store.
func (s *Store) UserByID(ctx context.Context, id string) (store.UserEntry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok := s.byID[id]
	if !ok {
		return store.UserEntry{}, false, nil
	}
	p := s.people[key]
	if p == nil || p.user == nil || p.user.ID != id {
		return store.UserEntry{}, false, nil
	}
	return store.UserEntry{Key: key, User: cloneUser(*p.user)}, true, nil
}

// Sessions implements store.Store.
func (s *Store) Sessions(ctx context.Context, user store.UserKey, now time.Time) ([]store.Session, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	now = ms(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.person(user, s.clock(), false)
	if p == nil {
		return nil, nil
	}
	var out []store.Session
	for _, r := range p.sessions {
		if r.s.Active(now) {
			out = append(out, r.s)
		}
	}
	slices.SortFunc(out, compareSessions)
	return out, nil
}

// compareSessions orders sessions oldest first, ties by ID.
func compareSessions(a, b store.Session) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return nil }

// Close implements store.Store; there is nothing to release.
func (s *Store) Close() error { return nil }

// addSession stores a new session with its first refresh token, as a
// sign-in (or the sign-in that completes a phone change) creates it.
func (p *person) addSession(sess store.Session, key store.UserKey, userID, refreshHash string, now, wall time.Time) {
	sess.User = key
	sess.UserID = userID
	sess.CreatedAt = ms(sess.CreatedAt)
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = now
	}
	sess.ExpiresAt = ms(sess.ExpiresAt)
	sess.RevokedAt = time.Time{}
	sess.RefreshedAt = time.Time{}
	sess.UserAgent = clip(sess.UserAgent, maxUserAgent)
	life := wall.Add(sess.ExpiresAt.Sub(now))
	p.sessions[sess.ID] = &sessionRec{s: sess, wall: life}
	p.tokens[refreshHash] = &tokenRec{sessionID: sess.ID, wall: life}
}
