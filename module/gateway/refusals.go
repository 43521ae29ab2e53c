package gateway

import (
	"sync"
	"time"
)

// maxRefusals bounds the memory of refusals: under a flood from more
// addresses than this, the rest are refused by the store as before.
const maxRefusals = 100_000

// refusals remembers, on this instance, which send limits the store said
// are full and until when: under a flood from one address (or at one
// phone) each further request is refused here, without a store round trip
// and, for an address, before its body is read or its phone parsed. It
// only refuses, and never beyond the Retry-After the store gave, so it
// admits nothing the store would not have admitted.
type refusals struct {
	mu    sync.RWMutex
	m     map[string]refusal
	swept time.Time // last sweep of a full map: at most one a second
}

type refusal struct {
	until   time.Time
	limited bool // the per-phone limit, not the cooldown (for the message)
}

func newRefusals() *refusals { return &refusals{m: make(map[string]refusal)} }

// check returns how long key is still refused at now (0: not refused).
func (r *refusals) check(key string, now time.Time) (time.Duration, refusal) {
	r.mu.RLock()
	f, ok := r.m[key]
	r.mu.RUnlock()
	if !ok || !now.Before(f.until) {
		return 0, refusal{}
	}
	return f.until.Sub(now), f
}

// note records that the store refused key until until.
func (r *refusals) note(key string, until time.Time, limited bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= maxRefusals {
		// a flood from more keys than fit must not make every refusal
		// scan the whole map under the lock
		if now.Sub(r.swept) < time.Second {
			return
		}
		r.swept = now
		for k, f := range r.m {
			if !now.Before(f.until) {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxRefusals {
			return
		}
	}
	r.m[key] = refusal{until: until, limited: limited}
}

// forget drops key: the store gave its quota back (a send the provider
// refused).
func (r *refusals) forget(key string) {
	r.mu.Lock()
	delete(r.m, key)
	r.mu.Unlock()
}
