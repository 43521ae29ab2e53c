package gateway

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/store"
)

// A revocation other instances never hear of lets them accept the
// session's access tokens until they expire. Announcements are idempotent,
// so whenever a revoked session is seen it is announced again: a revoke
// whose reply was lost (the script ran, the caller got an error and never
// announced) is repaired by the next logout retry, the next look at the
// session, or this instance's retry loop.

// reannounceEvery bounds how often one instance announces one session
// again, so that a revoked token replayed in a loop costs no more than one
// announcement a minute.
const reannounceEvery = time.Minute

// maxReannounced bounds the memory of what was announced again, and
// maxRepairs the queue of people whose revocations await it (in a long
// outage, more are dropped: the person's next logout or revoked session
// seen queues them again).
const (
	maxReannounced = 10_000
	maxRepairs     = 10_000
)

// reannounce announces again every recently revoked session of a person
// (store.Reannounce) and refuses them here at once; when the store does
// not answer, the retry loop tries again until it does.
func (g *Gateway) reannounce(ctx context.Context, uk store.UserKey, now time.Time) {
	ids, err := g.cfg.Store.Reannounce(context.WithoutCancel(ctx), uk, now)
	g.cache.Revoke(ids, now.Add(g.revocationRetain()))
	if err != nil {
		g.log.Warn("revocations not announced again yet; will retry", zap.Error(err))
		g.repairLater(uk)
	}
}

// repairLater has the retry loop announce the person's revocations again.
func (g *Gateway) repairLater(uk store.UserKey) {
	g.pendingMu.Lock()
	if len(g.repairs) < maxRepairs {
		g.repairs[uk] = struct{}{}
	}
	g.pendingMu.Unlock()
}

// revokedSeen: a session the store says is revoked may be one whose
// announcement was lost. It is refused here from now on, and the person's
// revocations are announced again (in the background, at most once a
// minute per session).
func (g *Gateway) revokedSeen(uk store.UserKey, sessionID string, now time.Time) {
	g.cache.Revoke([]string{sessionID}, now.Add(g.revocationRetain()))
	if g.firstReannounce(sessionID, now) {
		g.repairLater(uk)
	}
}

// firstReannounce reports whether sessionID was not announced again by
// this instance within reannounceEvery, and notes that it is now.
func (g *Gateway) firstReannounce(sessionID string, now time.Time) bool {
	g.pendingMu.Lock()
	defer g.pendingMu.Unlock()
	if at, ok := g.reannounced[sessionID]; ok && now.Sub(at) < reannounceEvery && !now.Before(at) {
		return false
	}
	if len(g.reannounced) >= maxReannounced {
		for id, at := range g.reannounced {
			if now.Sub(at) >= reannounceEvery || now.Before(at) {
				delete(g.reannounced, id)
			}
		}
		if len(g.reannounced) >= maxReannounced {
			return true // a flood of distinct sessions: announce, forget nothing new
		}
	}
	g.reannounced[sessionID] = now
	return true
}

// retryRepairs announces again the revocations of the people queued by
// repairLater; those the store does not answer for stay queued.
func (g *Gateway) retryRepairs(ctx context.Context) {
	g.pendingMu.Lock()
	if len(g.repairs) == 0 {
		g.pendingMu.Unlock()
		return
	}
	people := make([]store.UserKey, 0, len(g.repairs))
	for uk := range g.repairs {
		people = append(people, uk)
	}
	g.pendingMu.Unlock()
	now := g.now()
	for _, uk := range people {
		ids, err := g.cfg.Store.Reannounce(ctx, uk, now)
		if err != nil {
			continue
		}
		g.cache.Revoke(ids, now.Add(g.revocationRetain()))
		g.pendingMu.Lock()
		delete(g.repairs, uk)
		g.pendingMu.Unlock()
		if len(ids) > 0 {
			g.log.Info("revocations announced again", zap.Int("sessions", len(ids)))
		}
	}
}

// endSessions revokes sessions of one person in the store and announces
// them, best effort: used where a session must end but the request is
// already refused anyway.
func (g *Gateway) endSessions(ctx context.Context, uk store.UserKey, ids []string, now time.Time) {
	ctx = context.WithoutCancel(ctx)
	g.cache.Revoke(ids, now.Add(g.revocationRetain()))
	for _, id := range ids {
		if _, err := g.cfg.Store.Revoke(ctx, uk, store.RevokeOne, id, now); err != nil {
			g.log.Warn("ending a session", zap.Error(err))
		}
	}
	g.announce(ctx, ids, now)
}

// announce publishes revocations on the feed, or keeps them to announce
// again: a revocation other instances never hear of would let them accept
// the session's access tokens until they expire.
func (g *Gateway) announce(ctx context.Context, ids []string, at time.Time) {
	if len(ids) == 0 {
		return
	}
	if err := g.cfg.Store.Announce(context.WithoutCancel(ctx), ids, at); err != nil {
		g.log.Error("revocation stored but not announced yet; will retry", zap.Error(err), zap.Int("sessions", len(ids)))
		g.pendingMu.Lock()
		for _, id := range ids {
			g.pending[id] = at
		}
		g.pendingMu.Unlock()
	}
}

func (g *Gateway) retryAnnouncements(ctx context.Context) {
	t := time.NewTicker(g.cfg.AnnounceRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.retryRepairs(ctx)
		g.pendingMu.Lock()
		if len(g.pending) == 0 {
			g.pendingMu.Unlock()
			continue
		}
		ids := make([]string, 0, len(g.pending))
		oldest := g.now()
		for id, at := range g.pending {
			ids = append(ids, id)
			if at.Before(oldest) {
				oldest = at
			}
		}
		g.pendingMu.Unlock()
		if err := g.cfg.Store.Announce(ctx, ids, oldest); err != nil {
			continue
		}
		g.pendingMu.Lock()
		for _, id := range ids {
			delete(g.pending, id)
		}
		g.pendingMu.Unlock()
		g.log.Info("revocations announced after retry", zap.Int("sessions", len(ids)))
	}
}

// revocationRetain is how long revocations matter: an access token issued
// before its session was revoked lives at most AccessTTL (+ skew).
func (g *Gateway) revocationRetain() time.Duration {
	return g.cfg.AccessTTL + time.Minute
}
