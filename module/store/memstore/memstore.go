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
	"slices"
	"sync"
	"time"

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

	// index lists users as "<id>:<key>", sorted bytewise: the members of
	// the Redis store's index, added and removed where that store adds and
	// removes them, so that ListUsers and UserByID answer alike. As there,
	// an entry whose key has no user of that ID (any more) is stale: the
	// readers skip and drop it.
	index []string

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
		began:  time.Now(),
	}
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

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return nil }

// Close implements store.Store; there is nothing to release.
func (s *Store) Close() error { return nil }
