package otpgate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// `caddy validate` (and `caddy adapt`) change nothing: not the Caddy
// storage (no server secret, no generated key), not Redis (no secret
// fingerprint), whether they find them empty or holding a running
// instance's state. A CI job that validates against production leaves
// it as it was, and production then still starts.
func TestCaddyValidate_NoSideEffects_OnRedisOrStorage(t *testing.T) {
	rd := testenv.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	prodStorage, laptopStorage := t.TempDir(), t.TempDir()
	caddyfile := func(storage string) string {
		return fmt.Sprintf(`{
	storage file_system %s
	admin off
	auto_https off
	otpgate {
		store redis %s
		test_phone +12015550100 123456
		signing_alg EdDSA
	}
}

http://127.0.0.1:%d {
	otpgate
	respond "app"
}
`, storage, rd.URL(), testenv.FreePort(t))
	}
	validate := func(src string) {
		t.Helper()
		raw, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
		if err != nil {
			t.Fatalf("adapt: %v", err)
		}
		var cfg caddy.Config
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&cfg); err != nil {
			t.Fatalf("validate: %v", err)
		}
	}

	// nothing there yet: validating creates nothing
	redisBefore, storageBefore := redisDump(t, client), treeHash(t, prodStorage)
	validate(caddyfile(prodStorage))
	if got := redisDump(t, client); !maps.Equal(got, redisBefore) {
		t.Errorf("validate wrote to an empty Redis: keys %v", slices.Sorted(maps.Keys(got)))
	}
	if got := treeHash(t, prodStorage); got != storageBefore {
		t.Errorf("validate wrote to an empty storage:\n%s", listTree(t, prodStorage))
	}

	// a running instance, then a laptop validating the same config with
	// its own (empty) storage against the production Redis
	testenv.LoadCaddyfile(t, caddyfile(prodStorage))
	// the instance is settled once its revocation feed has connected
	// (which records the feed's epoch)
	for i := 0; client.Exists(context.Background(), "otpgate:{rev}:epoch").Val() == 0; i++ {
		if i == 500 {
			t.Fatal("the running instance's revocation feed never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	redisBefore, storageBefore = redisDump(t, client), treeHash(t, prodStorage)
	laptopBefore := treeHash(t, laptopStorage)
	if len(redisBefore) == 0 || storageBefore == treeHash(t, t.TempDir()) {
		t.Fatal("the running instance stored nothing: the test proves nothing")
	}
	validate(caddyfile(laptopStorage))
	validate(caddyfile(prodStorage))
	if got := redisDump(t, client); !maps.Equal(got, redisBefore) {
		t.Errorf("validate changed the production Redis:\n%s", dumpDiff(redisBefore, got))
	}
	if got := treeHash(t, prodStorage); got != storageBefore {
		t.Errorf("validate changed the production storage:\n%s", listTree(t, prodStorage))
	}
	if got := treeHash(t, laptopStorage); got != laptopBefore {
		t.Errorf("validate wrote to the laptop's storage:\n%s", listTree(t, laptopStorage))
	}
	// production still starts (a reload) with the secret it recorded
	if err := caddy.Load(testenv.AdaptCaddyfile(t, caddyfile(prodStorage)), true); err != nil {
		t.Fatalf("production reload after validation: %v", err)
	}
}

// The first start stores what provisioning generated; a reload then
// provisions against the filled storage and keeps the same key.
func TestCaddy_FirstStart_StoresSecretAndKeyOnce(t *testing.T) {
	g := startGateway(t, "test_phone +12015550100 123456", "")
	storage := regexp.MustCompile(`storage file_system (\S+)`).FindStringSubmatch(g.caddyfile)[1]
	for _, p := range []string{"otpgate/secret", "otpgate/keys/current.pem"} {
		if _, err := os.Stat(filepath.Join(storage, p)); err != nil {
			t.Errorf("%s not stored at start: %v", p, err)
		}
	}
	_, _, jwks := call(t, http.DefaultClient, "GET", g.base+"/auth/v1/.well-known/jwks.json", "")
	reload(t, g)
	_, _, again := call(t, http.DefaultClient, "GET", g.base+"/auth/v1/.well-known/jwks.json", "")
	if fmt.Sprint(jwks) != fmt.Sprint(again) {
		t.Fatalf("the key changed across a reload: %v, then %v", jwks, again)
	}
}

// Two instances that share storage, both provisioned before either has
// started (the first start of a cluster), each generate a secret and a
// key; the one that starts second adopts what the first stored, so they
// agree.
func TestApp_InstancesStartingTogether_AgreeOnSecretAndKey(t *testing.T) {
	raw := testenv.AdaptCaddyfile(t, fmt.Sprintf("{\n\tstorage file_system %s\n\tadmin off\n\totpgate\n}\n", t.TempDir()))
	provision := func() *App {
		var cfg caddy.Config
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		ctx, err := caddy.ProvisionContext(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		app, err := ctx.App("otpgate")
		if err != nil {
			t.Fatal(err)
		}
		// the pooled memory store is released, as Caddy does when a
		// config goes
		t.Cleanup(func() { _ = app.(*App).Cleanup() })
		return app.(*App)
	}
	a, b := provision(), provision()
	if bytes.Equal(a.shared.secret, b.shared.secret) || !a.shared.newSecret || !b.shared.newKey {
		t.Fatal("want two instances that each generated their own secret and key")
	}
	mine := b.shared.ring.Current.Kid
	for _, app := range []*App{a, b} {
		if err := app.Start(); err != nil {
			t.Fatal(err)
		}
		defer app.Stop()
	}
	if !bytes.Equal(a.shared.secret, b.shared.secret) || a.shared.ring.Current.Kid != b.shared.ring.Current.Kid {
		t.Fatal("the instance that started second kept its own secret or key")
	}
	if b.shared.ring.Current.Kid == mine {
		t.Fatal("the second instance's generated key won")
	}
	if !bytes.Equal(b.gw.ServerSecret(), a.shared.secret) || string(b.gw.JWKS()) != string(a.gw.JWKS()) {
		t.Fatal("the second instance's gateway still uses what it generated")
	}
}

// redisDump is every key of the Redis with its serialized value and
// whether it expires.
func redisDump(t *testing.T, c *redis.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		v, err := c.Dump(ctx, k).Result()
		if err != nil {
			t.Fatalf("dump %s: %v", k, err)
		}
		ttl, _ := c.PTTL(ctx, k).Result()
		out[k] = fmt.Sprintf("%x expires=%v", v, ttl > 0)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// treeHash is a hash of every path, mode and file content under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v\n", rel, info.Mode())
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func listTree(t *testing.T, dir string) string {
	t.Helper()
	var out string
	_ = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, _ error) error {
		rel, _ := filepath.Rel(dir, p)
		out += rel + "\n"
		return nil
	})
	return out
}

func dumpDiff(before, after map[string]string) string {
	var out string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if b, ok := before[k]; !ok {
			out += "added " + k + "\n"
		} else if b != after[k] {
			out += "changed " + k + "\n"
		}
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			out += "removed " + k + "\n"
		}
	}
	return out
}
