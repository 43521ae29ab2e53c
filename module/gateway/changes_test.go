package gateway

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/session"
)

func TestUserChangeID_RoundTrips(t *testing.T) {
	at := time.UnixMilli(1_800_000_000_123)
	uid, got, ok := parseUserChange(userChangeID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", at))
	if !ok || uid != "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" || !got.Equal(at) {
		t.Fatalf("got %q %v %v", uid, got, ok)
	}
	for _, bad := range []string{"2b4f9a0e-1c3d-4e5f-8a7b-9c0d1e2f3a4b", "u:", "u:@1", "u:x@y"} {
		if _, _, ok := parseUserChange(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Tokens issued before a change (within the clock leeway) are stale; a
// store check made after this instance learnt of the change is not.
func TestChangeLog_StaleUntilCheckedAfterTheChange(t *testing.T) {
	c := newChangeLog()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	claims := session.Claims{Subject: "u1", Phone: "+14155550123", IssuedAt: t0}
	if c.stale(claims) {
		t.Fatal("stale with no change")
	}
	c.mark("u1", t0.Add(time.Minute), t0.Add(time.Minute), time.Hour)
	if !c.stale(claims) {
		t.Fatal("a token issued before the change is not stale")
	}
	late := claims
	late.IssuedAt = t0.Add(time.Minute + 10*time.Second)
	if !c.stale(late) {
		t.Fatal("a token issued within the leeway after the change is not stale")
	}
	late.IssuedAt = t0.Add(2 * time.Minute)
	if c.stale(late) {
		t.Fatal("a token issued well after the change is stale")
	}
	checked := claims
	checked.CheckedAt = t0.Add(time.Minute + time.Second)
	if c.stale(checked) {
		t.Fatal("claims checked after the change was seen are stale")
	}
	other := session.Claims{Subject: "u2", Phone: "+14155550123", IssuedAt: t0}
	c.mark("+14155550123", t0.Add(time.Minute), t0.Add(time.Minute), time.Hour)
	if !c.stale(other) {
		t.Fatal("a change by phone does not reach the phone's tokens")
	}
	c.prune(t0.Add(2 * time.Hour))
	if c.stale(claims) || c.n.Load() != 0 {
		t.Fatal("changes outlived any token they could concern")
	}
}

// A gateway that cannot know what changed before it started checks each
// earlier token once; tokens issued after its start are trusted.
func TestChangeLog_DistrustBefore_OneCheckPerEarlierToken(t *testing.T) {
	c := newChangeLog()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c.distrustBefore(t0, time.Hour)
	early := session.Claims{Subject: "u1", IssuedAt: t0.Add(-time.Minute)}
	if !c.stale(early) {
		t.Fatal("a token issued before the start is trusted unchecked")
	}
	early.CheckedAt = t0.Add(time.Second)
	if c.stale(early) {
		t.Fatal("a checked token is still stale")
	}
	if c.stale(session.Claims{Subject: "u1", IssuedAt: t0.Add(time.Minute)}) {
		t.Fatal("a token issued after the start is stale")
	}
	c.prune(t0.Add(2 * time.Hour))
	if c.n.Load() != 0 {
		t.Fatal("the floor outlived every token it could concern")
	}
}

// A store that lost its data voids the checks made against it before:
// a token checked in the store before the floor is checked again, one
// checked after is trusted; an earlier floor never lowers a later one.
func TestChangeLog_DistrustBefore_EarlierChecksVoid(t *testing.T) {
	c := newChangeLog()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c.distrustBefore(t0, time.Hour)
	checked := session.Claims{Subject: "u1", IssuedAt: t0.Add(-time.Hour), CheckedAt: t0.Add(-time.Second)}
	if !c.stale(checked) {
		t.Fatal("a token checked before the store lost its data is trusted")
	}
	checked.CheckedAt = t0.Add(time.Second)
	if c.stale(checked) {
		t.Fatal("a token checked after is still stale")
	}
	c.raiseFloor(t0.Add(-time.Hour), t0.Add(-time.Hour), time.Hour)
	if !c.stale(session.Claims{Subject: "u1", IssuedAt: t0.Add(-time.Minute)}) {
		t.Fatal("an earlier floor lowered the later one")
	}
}
