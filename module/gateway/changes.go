package gateway

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpgate/otpgate/module/session"
)

// Access changes travel on the revocation feed beside revoked session IDs,
// as members the session IDs (UUIDs) can never look like:
//
//	u:<user id>@<unix ms>  the user's access may have shrunk (ban, deletion,
//	                       a role taken away): tokens issued before are
//	                       checked in the store again before they pass
//	roster@<unix ms>       a users file changed: every instance re-reads its own
const (
	userChangePrefix = "u:"
	rosterChange     = "roster@"
)

func userChangeID(userID string, at time.Time) string {
	return userChangePrefix + userID + "@" + strconv.FormatInt(at.UnixMilli(), 10)
}

// parseUserChange splits a user change announcement.
func parseUserChange(id string) (userID string, at time.Time, ok bool) {
	rest, ok := strings.CutPrefix(id, userChangePrefix)
	if !ok {
		return "", time.Time{}, false
	}
	i := strings.LastIndexByte(rest, '@')
	if i <= 0 {
		return "", time.Time{}, false
	}
	ms, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return rest[:i], time.UnixMilli(ms), true
}

// changeLog remembers whose access changed, so that the gate re-checks
// the cached tokens of those users (and only those) in the store. Keys are
// user IDs, or "+E164" phones for changes of the users list, which this
// instance sees by phone.
//
// A change carries two times. at is when the change was made, by the clock
// of the instance that made it, widened by the tokens' clock leeway: a
// token issued (by any instance) before at+leeway may predate the change.
// seen is when this instance learnt of it: a store check made after seen
// already saw the change, whatever the clocks say.
type changeLog struct {
	n  atomic.Int64 // lets the gate skip all locking while nothing changed
	mu sync.RWMutex
	m  map[string]change
	// floor, when set, makes every token issued before it stale until
	// checked, and every token checked before floorChecked stale again: a
	// gateway that cannot know what changed before it started, or whose
	// store lost its data. Read without the lock: the gate reads them on
	// every request for an hour after a start.
	floor, floorChecked atomic.Int64
	floorKeep           int64
}

type change struct {
	at   int64 // unix nanoseconds, leeway included
	seen int64 // unix nanoseconds, this instance's clock
	keep int64 // dropped after this
}

func newChangeLog() *changeLog { return &changeLog{m: make(map[string]change)} }

func (c *changeLog) mark(key string, at, seen time.Time, retain time.Duration) {
	if key == "" {
		return
	}
	ch := change{
		at:   at.Add(session.Leeway).UnixNano(),
		seen: seen.UnixNano(),
		keep: seen.Add(retain).UnixNano(),
	}
	c.mu.Lock()
	old, ok := c.m[key]
	if ok {
		ch.at = max(ch.at, old.at)
		ch.seen = max(ch.seen, old.seen)
		ch.keep = max(ch.keep, old.keep)
	} else {
		c.n.Add(1)
	}
	c.m[key] = ch
	c.mu.Unlock()
}

// stale reports whether claims may predate a change of their user's
// access.
func (c *changeLog) stale(claims session.Claims) bool {
	n := c.n.Load()
	if n == 0 {
		return false
	}
	if floor := c.floor.Load(); floor != 0 {
		if claims.CheckedAt.IsZero() && claims.IssuedAt.UnixNano() < floor ||
			!claims.CheckedAt.IsZero() && claims.CheckedAt.UnixNano() < c.floorChecked.Load() {
			return true
		}
		if n == 1 {
			return false // the floor is the only change
		}
	}
	c.mu.RLock()
	byUser, u := c.m[claims.Subject]
	byPhone, p := c.m[claims.Phone]
	c.mu.RUnlock()
	return (u && staleAgainst(claims, byUser)) || (p && staleAgainst(claims, byPhone))
}

// distrustBefore makes tokens issued before t (by any instance, within the
// clock leeway), and tokens checked in the store before t, stale until
// checked (again), for as long as such tokens can live.
func (c *changeLog) distrustBefore(t time.Time, retain time.Duration) {
	c.raiseFloor(t.Add(session.Leeway), t, retain)
}

// raiseFloor makes tokens issued before issued, or checked before
// checked, stale until checked; an earlier floor never lowers a later one.
func (c *changeLog) raiseFloor(issued, checked time.Time, retain time.Duration) {
	c.mu.Lock()
	c.floorChecked.Store(max(c.floorChecked.Load(), checked.UnixNano()))
	if c.floor.Load() == 0 {
		c.n.Add(1)
	}
	c.floor.Store(max(c.floor.Load(), issued.UnixNano()))
	c.floorKeep = max(c.floorKeep, checked.Add(retain).UnixNano())
	c.mu.Unlock()
}

func staleAgainst(claims session.Claims, ch change) bool {
	if !claims.CheckedAt.IsZero() {
		// a check at the very instant the change arrived may have read
		// the store before it: check again
		return claims.CheckedAt.UnixNano() <= ch.seen
	}
	return claims.IssuedAt.UnixNano() < ch.at
}

// prune drops changes older than any token that could predate them.
func (c *changeLog) prune(now time.Time) {
	if c.n.Load() == 0 {
		return
	}
	t := now.UnixNano()
	c.mu.Lock()
	for k, ch := range c.m {
		if ch.keep <= t {
			delete(c.m, k)
			c.n.Add(-1)
		}
	}
	if c.floor.Load() != 0 && c.floorKeep <= t {
		c.floor.Store(0)
		c.floorChecked.Store(0)
		c.floorKeep = 0
		c.n.Add(-1)
	}
	c.mu.Unlock()
}
