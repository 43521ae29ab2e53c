package gateway

import (
	"strings"
	"time"

	"go.uber.org/zap"
)

type feedHandler struct{ g *Gateway }

func (f feedHandler) Revoked(ids []string) {
	g := f.g
	now := g.now()
	sessions := ids[:0:0]
	for _, id := range ids {
		switch {
		case strings.HasPrefix(id, userChangePrefix):
			if uid, at, ok := parseUserChange(id); ok {
				g.changes.mark(uid, at, now, g.revocationRetain())
			}
		case strings.HasPrefix(id, rosterChange):
			g.RosterChanged()
		default:
			sessions = append(sessions, id)
		}
	}
	g.cache.Revoke(sessions, now.Add(g.revocationRetain()))
}

// Epoch: a store whose data began after this gateway last looked (Redis
// restarted empty, a flush) has lost the sessions and revocations that
// tokens were trusted against, so every token issued or checked before
// now is checked in the store again before it passes (the store now says
// whether its session exists). At the first connection, tokens issued
// before the store's data began are checked once (a memory store after a
// restart, a Redis that lost its data before this gateway started).
func (f feedHandler) Epoch(began time.Time) {
	g := f.g
	prev := g.epoch.Swap(began.UnixMilli())
	switch {
	case prev == began.UnixMilli():
	case prev != 0:
		g.log.Warn("the store lost its data (a new epoch began): every session is checked in the store again",
			zap.Time("epoch", began), zap.Time("previous_epoch", time.UnixMilli(prev)))
		g.changes.distrustBefore(g.now(), g.revocationRetain())
	default:
		// measured on the wall clock, applied to the gateway's own (JWT
		// times have whole seconds: a second of slack)
		if age := time.Since(began); age < g.revocationRetain() {
			floor := g.now().Add(-age - time.Second)
			g.changes.raiseFloor(floor, floor, g.revocationRetain())
		}
	}
}

func (f feedHandler) Healthy(ok bool) {
	if f.g.feedOK.Swap(ok) != ok {
		f.g.log.Info("revocation feed", zap.Bool("healthy", ok))
		f.g.cfg.Metrics.feedHealthy(ok)
	}
}
