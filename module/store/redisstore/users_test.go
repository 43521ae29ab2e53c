package redisstore_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
)

const indexKey = "otpgate:{users}:index"

func userHash(u store.UserKey) string { return "otpgate:{" + string(u) + "}:user" }

// signIn sends a code to u and verifies it at now.
func signIn(t *testing.T, s store.Store, u store.UserKey, sessionID string, now time.Time) store.ConsumeResult {
	t.Helper()
	ctx := t.Context()
	if res, err := s.BeginSend(ctx, sendReq(u, "c-"+sessionID, now)); err != nil || res.Status != store.SendOK {
		t.Fatalf("BeginSend: %v %v", res.Status, err)
	}
	res, err := s.Consume(ctx, consumeReq(u, "c-"+sessionID, sessionID, now))
	if err != nil || res.Status != store.ConsumeOK {
		t.Fatalf("Consume: %v %v", res.Status, err)
	}
	return res
}

func indexMembers(t *testing.T, c redis.UniversalClient) []string {
	t.Helper()
	m, err := c.ZRange(t.Context(), indexKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The index is written in another slot after the user's script; if that
// write is lost, the user's next sign-in writes it, and the sign-ins after
// that cost what they always did.
func TestIndex_LostWrite_RepairedAtNextSignIn(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, n := open(t, srv)
	ctx := t.Context()
	cost := costs(t, n)
	flow(t, s, alice, base) // loads the scripts

	// each sign-in 10 minutes after the last, clear of the phone limit
	signInCosts := func(name string, want int64, i int) {
		t.Helper()
		now := base.Add(time.Duration(i) * 10 * time.Minute)
		id := strconv.Itoa(i)
		if res, err := s.BeginSend(ctx, sendReq(bob, "c"+id, now)); err != nil || res.Status != store.SendOK {
			t.Fatalf("BeginSend: %v %v", res.Status, err)
		}
		cost(name, want, func() error {
			res, err := s.Consume(ctx, consumeReq(bob, "c"+id, "b"+id, now))
			if err == nil && (res.Status != store.ConsumeOK || res.Created != (i == 1)) {
				t.Errorf("%s: status %d created %v", name, res.Status, res.Created)
			}
			return err
		})
	}
	signInCosts("Consume (creates and indexes the user)", 3, 1)
	signInCosts("Consume (sign-in of an indexed user)", 1, 2)

	// lose the index write, as a failed command or an older user would
	member := "user-b1:" + string(bob)
	if err := c.ZRem(ctx, indexKey, member).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HDel(ctx, userHash(bob), "ix").Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.UserByID(ctx, "user-b1"); err != nil || ok {
		t.Fatalf("UserByID without an index entry: found=%v err=%v", ok, err)
	}

	signInCosts("Consume (repairs the index)", 3, 3)
	if e, ok, err := s.UserByID(ctx, "user-b1"); err != nil || !ok || e.Key != bob {
		t.Fatalf("UserByID after the repair = %+v found=%v err=%v", e, ok, err)
	}
	if ix, _ := c.HGet(ctx, userHash(bob), "ix").Result(); ix != "1" {
		t.Fatalf("ix = %q after the repair, want 1", ix)
	}
	signInCosts("Consume (sign-in after the repair)", 1, 4)
	if got := indexMembers(t, c); !slices.Contains(got, member) || len(got) != 2 {
		t.Fatalf("index = %q, want alice's and %s once", got, member)
	}
}

// The index costs commands only where it changes (creation, repair,
// deletion) and in the administrator's reads.
func TestCommands_IndexOnlyOnCreationRepairDeletionAndReads(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, _, n := open(t, srv)
	ctx := t.Context()
	cost := costs(t, n)
	flow(t, s, alice, base)
	now := base.Add(time.Hour)

	if _, err := s.BeginSend(ctx, sendReq(bob, "c1", now)); err != nil {
		t.Fatal(err)
	}
	cost("Consume (creates the user: script, index, mark)", 3, func() error {
		res, err := s.Consume(ctx, consumeReq(bob, "c1", "s1", now))
		if err == nil && !res.Created {
			t.Error("Created = false")
		}
		return err
	})
	const carol store.UserKey = "Y2Fyb2wtdXNlci1rZXktMDA"
	cost("CreateUser (new: script, index, mark)", 3, func() error {
		_, created, err := s.CreateUser(ctx, createReq(carol, "u-carol", now))
		if err == nil && !created {
			t.Error("created = false")
		}
		return err
	})
	cost("CreateUser (existing)", 1, func() error { _, _, err := s.CreateUser(ctx, createReq(carol, "u-x", now)); return err })
	cost("UserByID (range, user)", 2, func() error { _, _, err := s.UserByID(ctx, "u-carol"); return err })
	cost("ListUsers (count and range, one read per user)", 2+3, func() error {
		entries, total, err := s.ListUsers(ctx, 0, 10)
		if err == nil && (len(entries) != 3 || total != 3) {
			t.Errorf("ListUsers: %d entries, total %d; want 3, 3", len(entries), total)
		}
		return err
	})
	cost("DeleteUser (script, index)", 2, func() error { _, _, _, err := s.DeleteUser(ctx, carol, now); return err })
	cost("DeleteUser (unknown)", 1, func() error { _, _, _, err := s.DeleteUser(ctx, carol, now); return err })
}

// Entries whose user is gone, has another ID or cannot be a user are
// skipped, removed, and the page is filled from the entries after them.
func TestListUsers_StaleEntriesSkippedRemovedPageFilled(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, _ := open(t, srv)
	ctx := t.Context()
	keys := map[string]store.UserKey{}
	for _, id := range []string{"u1", "u2", "u3", "u4", "u5"} {
		keys[id] = store.UserKey("key-" + id)
		if _, _, err := s.CreateUser(ctx, createReq(keys[id], id, base)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{
		"u0:key-ghost",  // no user
		"u2b:key-u3",    // the key's user has another ID
		"u45:key-ghost", // no user
		"u9:bad{key}",   // not a key
	} {
		if err := c.ZAdd(ctx, indexKey, redis.Z{Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// a user deleted without its index entry
	if err := c.Del(ctx, userHash(keys["u4"])).Err(); err != nil {
		t.Fatal(err)
	}

	entries, total, err := s.ListUsers(ctx, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.User.ID)
		if e.Key != keys[e.User.ID] {
			t.Errorf("%s: key %s", e.User.ID, e.Key)
		}
	}
	if !slices.Equal(ids, []string{"u1", "u2", "u3"}) {
		t.Fatalf("first page = %q, want u1 u2 u3", ids)
	}
	if total != 9-2 { // of 9 entries, u0 and u2b were met and removed
		t.Fatalf("total = %d, want 7", total)
	}

	entries, total, err = s.ListUsers(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, e := range entries {
		ids = append(ids, e.User.ID)
	}
	if !slices.Equal(ids, []string{"u1", "u2", "u3", "u5"}) || total != 4 {
		t.Fatalf("whole list = %q total %d, want u1 u2 u3 u5 and 4", ids, total)
	}
	if got := indexMembers(t, c); len(got) != 4 {
		t.Fatalf("index = %q, want the 4 live entries", got)
	}

	// UserByID removes what it finds stale too
	if err := c.ZAdd(ctx, indexKey, redis.Z{Member: "u7:key-ghost"}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.UserByID(ctx, "u7"); err != nil || ok {
		t.Fatalf("UserByID of a stale entry: found=%v err=%v", ok, err)
	}
	if got := indexMembers(t, c); slices.Contains(got, "u7:key-ghost") {
		t.Fatalf("index = %q, want the stale entry removed", got)
	}
}

// DeleteUser leaves no key of the person but the opt-out marker and the
// send log, and no index entry: sessions and refresh tokens are found by
// their indexes, rotated ones included.
func TestDeleteUser_LeavesOnlyOptOutAndSendLog(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, _ := open(t, srv)
	ctx := t.Context()
	signIn(t, s, alice, "s1", base)
	signIn(t, s, alice, "s2", base.Add(time.Minute))
	hash := "rt-s1"
	for i, next := range []string{"rt-a", "rt-b", "rt-c"} {
		now := base.Add(time.Duration(2+i) * time.Minute)
		if res, err := s.Rotate(ctx, store.RotateRequest{User: alice, OldHash: hash, NewHash: next, Now: now}); err != nil || res.Status != store.RotateOK {
			t.Fatalf("Rotate: %v %v", res.Status, err)
		}
		hash = next
	}
	if res, err := s.BeginSend(ctx, sendReq(alice, "pending", base.Add(10*time.Minute))); err != nil || res.Status != store.SendOK {
		t.Fatalf("BeginSend: %v %v", res.Status, err)
	}
	if _, err := s.Attempt(ctx, attemptReq(alice, base.Add(10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOptOut(ctx, alice, true, base.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	before, err := c.Keys(ctx, "otpgate:{"+string(alice)+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(before) < 12 {
		t.Fatalf("only %d keys before the deletion: %q", len(before), before)
	}

	if _, ids, ok, err := s.DeleteUser(ctx, alice, base.Add(12*time.Minute)); err != nil || !ok || !slices.Equal(ids, []string{"s1", "s2"}) {
		t.Fatalf("DeleteUser = %q found=%v err=%v", ids, ok, err)
	}
	after, err := c.Keys(ctx, "otpgate:{"+string(alice)+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(after)
	want := []string{"otpgate:{" + string(alice) + "}:optout", "otpgate:{" + string(alice) + "}:sends"}
	if !slices.Equal(after, want) {
		t.Fatalf("keys left = %q, want %q", after, want)
	}
	for _, m := range indexMembers(t, c) {
		if strings.HasSuffix(m, ":"+string(alice)) {
			t.Fatalf("index entry %q left", m)
		}
	}
}

// A Consume told that the user is probably new writes the index entry in
// its own round trip: a first sign-in costs one round trip and leaves the
// user indexed; when the hint is wrong (the user exists), the entry written
// ahead is taken back.
func TestConsume_NewUserHint_IndexesInTheSameRoundTrip(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, c, n := open(t, srv)
	ctx := t.Context()
	flow(t, s, alice, base) // loads the scripts

	if res, err := s.BeginSend(ctx, sendReq(bob, "c1", base)); err != nil || res.Status != store.SendOK {
		t.Fatalf("BeginSend: %v %v", res.Status, err)
	}
	ch, _, _, err := s.Challenge(ctx, bob)
	if err != nil || ch.HasUser {
		t.Fatalf("Challenge of a new person: HasUser=%v err=%v", ch.HasUser, err)
	}
	req := consumeReq(bob, "c1", "b1", base)
	req.NewUser = true
	trips := n.RoundTrips()
	res, err := s.Consume(ctx, req)
	if err != nil || res.Status != store.ConsumeOK || !res.Created {
		t.Fatalf("Consume: %+v %v", res, err)
	}
	if got := n.RoundTrips() - trips; got != 1 {
		t.Fatalf("a first sign-in cost %d round trips, want 1", got)
	}
	if ix, _ := c.HGet(ctx, userHash(bob), "ix").Result(); ix != "1" {
		t.Fatalf("ix = %q, want 1", ix)
	}
	if e, ok, err := s.UserByID(ctx, res.User.ID); err != nil || !ok || e.Key != bob {
		t.Fatalf("UserByID = %+v %v %v", e, ok, err)
	}

	// a wrong hint: bob exists now
	later := base.Add(10 * time.Minute)
	if res, err := s.BeginSend(ctx, sendReq(bob, "c2", later)); err != nil || res.Status != store.SendOK {
		t.Fatalf("BeginSend: %v %v", res.Status, err)
	}
	req = consumeReq(bob, "c2", "b2", later)
	req.NewUserID = "user-never-created"
	req.NewUser = true
	if res, err := s.Consume(ctx, req); err != nil || res.Status != store.ConsumeOK || res.Created {
		t.Fatalf("Consume of a known user: %+v %v", res, err)
	}
	for _, m := range indexMembers(t, c) {
		if strings.HasPrefix(m, "user-never-created:") {
			t.Fatalf("the entry written ahead for a user that was not created stayed: %q", indexMembers(t, c))
		}
	}
}
