package store

import (
	"context"
	"time"
)

// Limiter counts events against sliding-window limits.
type Limiter interface {
	// Hit records one event against a sliding-window limit (a sliding log:
	// at most limit events in any window ending now) and reports whether it
	// was allowed. A refused hit is not recorded. Used for the per-IP send
	// limit; key is an opaque string chosen by the caller (e.g. "ip:1.2.3.4").
	Hit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (Decision, error)
}

// Decision is the answer of a limit.
type Decision struct {
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration // > 0 when refused: when the oldest event leaves the window
}

// Limit is N events per Window.
type Limit struct {
	N      int
	Window time.Duration
}

// CheckLimit refuses a limit no store can keep.
func CheckLimit(window time.Duration) error {
	if window < time.Millisecond {
		return invalid("limit window under 1ms")
	}
	return nil
}
