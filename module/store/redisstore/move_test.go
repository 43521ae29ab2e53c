package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/redisstore"
)

// A phone change runs as scripts on two keys (two cluster slots) and the
// user index. These tests cut a move short after each of its steps, as an
// instance that dies or a Redis that stops answering would, and show that
// the state in between is usable (the forward says the move is pending)
// and that the next MoveUser completes the move without bringing anything
// in twice. They also check that no script spans two slots.

const (
	moveFrom  store.UserKey = "bW92ZS1mcm9tLWtleS0wMDA"
	moveTo    store.UserKey = "bW92ZS10by1rZXktMDAwMDA"
	moveIndex               = "otpgate:{users}:index"
)

func moveKey(u store.UserKey, part string) string { return "otpgate:{" + string(u) + "}:" + part }

// cutter fails the first command that cut matches, before it reaches
// Redis, and checks that every script keeps its keys in one slot.
type cutter struct {
	mu    sync.Mutex
	cut   func(args []any) bool
	fired bool
	cross []string
}

func (c *cutter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cutter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c *cutter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		c.mu.Lock()
		if name := strings.ToLower(fmt.Sprint(a[0])); name == "evalsha" || name == "eval" {
			n, _ := strconv.Atoi(fmt.Sprint(a[2]))
			tag := slotOf(fmt.Sprint(a[3]))
			for _, k := range a[3 : 3+n] {
				if slotOf(fmt.Sprint(k)) != tag {
					c.cross = append(c.cross, fmt.Sprint(a))
				}
			}
			for _, v := range a[3+n:] {
				if s, ok := v.(string); ok && strings.HasPrefix(s, "otpgate:{") && slotOf(s) != tag {
					c.cross = append(c.cross, fmt.Sprint(a))
				}
			}
		}
		cut := !c.fired && c.cut != nil && c.cut(a)
		if cut {
			c.fired = true
		}
		c.mu.Unlock()
		if cut {
			err := errors.New("cut short by the test")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func slotOf(k string) string {
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			return k[i+1 : i+1+j]
		}
	}
	return k
}

// script reports whether a command is a script call whose first key is key
// and that has n keys and m arguments (m < 0: any).
func script(a []any, key string, n, m int) bool {
	name := strings.ToLower(fmt.Sprint(a[0]))
	if (name != "evalsha" && name != "eval") || fmt.Sprint(a[2]) != strconv.Itoa(n) || fmt.Sprint(a[3]) != key {
		return false
	}
	return m < 0 || len(a)-3-n == m
}

func openMoveStore(t *testing.T) (*redisstore.Store, *cutter, redis.UniversalClient) {
	t.Helper()
	srv := testenv.StartRedis(t)
	opts, err := redisstore.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	c := &cutter{}
	client.AddHook(c)
	s := redisstore.New(client)
	t.Cleanup(func() { _ = s.Close() })
	return s, c, client
}

// signedInAndClaimed signs a user in under moveFrom (session s1, refresh
// token rt-s1, rotated once to rt-s1b) and claims a change of its phone to
// moveTo at now.
func signedInAndClaimed(t *testing.T, s store.Store, now time.Time) string {
	t.Helper()
	ctx := t.Context()
	send := func(u store.UserKey, id string, change string, from store.UserKey) {
		t.Helper()
		res, err := s.BeginSend(ctx, store.SendRequest{User: u, Now: now, Keep: 10 * time.Minute,
			PhoneLimit: store.Limit{N: 5, Window: time.Hour},
			Challenge: store.Challenge{ID: id, CodeMAC: []byte("mac"), Phone: "+12015550199", Channel: "sms",
				CreateUser: change == "", SentAt: now, ExpiresAt: now.Add(5 * time.Minute), ChangeOf: change, ChangeFrom: from}})
		if err != nil || res.Status != store.SendOK {
			t.Fatalf("BeginSend %s: %v %v", id, res.Status, err)
		}
	}
	send(moveFrom, "c1", "", "")
	res, err := s.Consume(ctx, store.ConsumeRequest{User: moveFrom, ChallengeID: "c1", Now: now, NewUserID: "u-moving",
		Session: store.Session{ID: "s1", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}, RefreshHash: "rt-s1"})
	if err != nil || res.Status != store.ConsumeOK {
		t.Fatalf("Consume: %v %v", res.Status, err)
	}
	if r, err := s.Rotate(ctx, store.RotateRequest{User: moveFrom, OldHash: "rt-s1", NewHash: "rt-s1b", Now: now}); err != nil || r.Status != store.RotateOK {
		t.Fatalf("Rotate: %v %v", r.Status, err)
	}
	send(moveTo, "chg", res.User.ID, moveFrom)
	u := res.User
	u.Phone = "+12015550199"
	st, err := s.ClaimMove(ctx, store.ClaimMoveRequest{User: moveTo, ChallengeID: "chg", Now: now, From: moveFrom, Moving: u})
	if err != nil || st != store.MoveDone {
		t.Fatalf("ClaimMove: %v %v", st, err)
	}
	return u.ID
}

func TestMoveUser_CutShortAfterEachStep_CompletedByTheNext(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	for _, step := range []struct {
		name string
		cut  func(a []any) bool
	}{
		{"after out", func(a []any) bool { return script(a, moveKey(moveTo, "user"), 5, -1) }},
		{"after in", func(a []any) bool {
			return strings.ToLower(fmt.Sprint(a[0])) == "zadd" && fmt.Sprint(a[1]) == moveIndex
		}},
		{"before finish", func(a []any) bool { return script(a, moveKey(moveFrom, "moved"), 1, 2) }},
	} {
		t.Run(step.name, func(t *testing.T) {
			s, c, _ := openMoveStore(t)
			ctx := t.Context()
			id := signedInAndClaimed(t, s, now)
			c.mu.Lock()
			c.cut = step.cut
			c.mu.Unlock()
			if _, err := s.MoveUser(ctx, store.MoveRequest{From: moveFrom, To: moveTo, UserID: id, Now: now}); err == nil {
				t.Fatal("MoveUser did not report the cut")
			}
			if !c.fired {
				t.Fatal("the step was never reached")
			}
			// in between: the old key forwards and says the move is pending
			f, err := s.Moved(ctx, moveFrom)
			if err != nil || len(f) != 1 || f[0] != (store.Forward{UserID: id, To: moveTo, Pending: true}) {
				t.Fatalf("Moved = %+v %v", f, err)
			}
			if _, ok, _ := s.User(ctx, moveFrom); ok {
				t.Fatal("the user is still under the old key")
			}
			if step.name == "after out" {
				if u, _, _ := s.User(ctx, moveTo); u.MovingFrom != moveFrom {
					t.Fatalf("the new key's user is not waiting for its records: %+v", u)
				}
				if _, ok, _ := s.Session(ctx, moveTo, "s1"); ok {
					t.Fatal("the session arrived before the records were brought in")
				}
			} else {
				// brought in: it is used under the new key before the move
				// completes, and must not come back to life
				if r, err := s.Rotate(ctx, store.RotateRequest{User: moveTo, OldHash: "rt-s1b", NewHash: "rt-s1c", Now: now.Add(time.Second)}); err != nil || r.Status != store.RotateOK {
					t.Fatalf("Rotate under the new key: %v %v", r.Status, err)
				}
			}
			// the next MoveUser completes it
			res, err := s.MoveUser(ctx, store.MoveRequest{From: moveFrom, To: moveTo, UserID: id, Now: now.Add(2 * time.Second)})
			if err != nil || res.Status != store.MoveDone || res.User.ID != id || res.User.MovingFrom != "" {
				t.Fatalf("MoveUser again: %+v %v", res, err)
			}
			if f, _ := s.Moved(ctx, moveFrom); len(f) != 1 || f[0].Pending {
				t.Fatalf("Moved after completion = %+v", f)
			}
			if e, ok, err := s.UserByID(ctx, id); err != nil || !ok || e.Key != moveTo {
				t.Fatalf("UserByID = %+v %v %v", e, ok, err)
			}
			if _, total, _ := s.ListUsers(ctx, 0, 10); total != 1 {
				t.Fatalf("ListUsers total = %d, want 1", total)
			}
			want := store.RotateOK
			if step.name != "after out" {
				want = store.RotateReused // rt-s1b was used before the completion
			}
			if r, err := s.Rotate(ctx, store.RotateRequest{User: moveTo, OldHash: "rt-s1b", NewHash: "rt-x", Now: now.Add(time.Minute)}); err != nil || r.Status != want {
				t.Fatalf("Rotate rt-s1b after completion = %v %v, want %v", r.Status, err, want)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.cross) > 0 {
				t.Fatalf("scripts across slots: %v", c.cross)
			}
		})
	}
}

// The forward and the moved records have TTLs: nothing a move writes is
// permanent but the user (and the forward lives as long as the sessions it
// leads to, at least store.AnnounceRetention).
func TestMoveUser_RecordsExpire(t *testing.T) {
	s, _, client := openMoveStore(t)
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	id := signedInAndClaimed(t, s, now)
	if res, err := s.MoveUser(ctx, store.MoveRequest{From: moveFrom, To: moveTo, UserID: id, Now: now}); err != nil || res.Status != store.MoveDone {
		t.Fatalf("MoveUser: %+v %v", res, err)
	}
	keys := []string{moveKey(moveFrom, "moved"), moveKey(moveTo, "s:s1"), moveKey(moveTo, "rt:rt-s1b"), moveKey(moveTo, "sessions"), moveKey(moveTo, "rts")}
	for _, k := range keys {
		ttl, err := client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("TTL %s: %v", k, err)
		}
		if ttl <= 0 {
			t.Errorf("%s: TTL %v, want one", k, ttl)
		}
	}
	if ttl, _ := client.PTTL(ctx, moveKey(moveFrom, "moved")).Result(); ttl < store.AnnounceRetention-time.Minute {
		t.Errorf("forward TTL %v, want at least %v", ttl, store.AnnounceRetention)
	}
}
