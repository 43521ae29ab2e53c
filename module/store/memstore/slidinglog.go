package memstore

import (
	"slices"
	"time"
)

// eventLog is a sliding log: the times of the events still in the window.
type eventLog struct {
	events []event
	wall   time.Time // wall expiry, renewed on every recorded event
}

type event struct {
	id string // lets AbortSend take back one send
	at time.Time
}

// add is the sliding log, the one rule behind Hit and the per-phone send
// limit (in the Redis store: sliding_log in lua/slidinglog.lua). It drops
// the events that left the window (at or before now-window) and, when
// fewer than limit remain, records the event id at now, renews the log's
// wall expiry and reports true with the events still allowed after it.
// Otherwise it records nothing, and retry is when enough old events leave
// for one more to fit.
func (l *eventLog) add(id string, limit int, window time.Duration, now, wall time.Time) (ok bool, remaining int, retry time.Duration) {
	cut := now.Add(-window)
	l.events = slices.DeleteFunc(l.events, func(e event) bool { return !e.at.After(cut) })
	n := len(l.events)
	if n < limit {
		l.events = append(l.events, event{id: id, at: ms(now)})
		l.wall = wall.Add(window)
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
