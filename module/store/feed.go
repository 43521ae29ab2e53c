package store

import (
	"context"
	"time"
)

// Feed carries revocations to every gateway.
type Feed interface {
	// Announce publishes revoked session IDs on the feed (Revoke does this
	// itself; Rotate's reuse revocation needs the caller to announce).
	// Announcements are kept for retain so that a subscriber that reconnects
	// can replay what it missed.
	Announce(ctx context.Context, sessionIDs []string, now time.Time) error

	// Subscribe feeds revocations to h until ctx is done. On every
	// (re)connection it first subscribes, then reports the store's epoch
	// (h.Epoch), then replays announcements since (now - retain), then
	// calls h.Healthy(true). When the connection is lost it calls
	// h.Healthy(false) before trying again. It returns when ctx is done.
	Subscribe(ctx context.Context, retain time.Duration, h FeedHandler)
}

// AnnounceRetention is how long the revocation feed keeps announcements for
// replay. Announce has no retain of its own, so the stores keep this much;
// a Subscribe retain beyond it replays no further back. A revocation
// matters for the access token lifetime (plus skew), so access_ttl is
// limited to 24h.
const AnnounceRetention = 25 * time.Hour

// FeedHandler receives the revocation feed.
type FeedHandler interface {
	Revoked(sessionIDs []string)
	Healthy(ok bool)
	// Epoch reports when the store's data began (wall clock). A store
	// that loses its data (a Redis restarted without persistence, a
	// flush) begins a new epoch: what it held before, revocations and
	// their log included, may be gone, so everything learnt from it
	// before must be checked again.
	Epoch(began time.Time)
}
