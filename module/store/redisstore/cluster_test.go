package redisstore_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/redisstore"
	"github.com/otpgate/otpgate/module/store/storetest"
)

// startClusterNode starts a redis-server in cluster mode that serves every
// slot alone, and stops it when the test ends. One node is enough for
// Redis to refuse what a real cluster refuses: a command or a script whose
// keys are in more than one slot.
func startClusterNode(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found on PATH: install it with `apt-get install redis-server`")
	}
	port := testenv.FreePort(t)
	if port == 6379 {
		port = testenv.FreePort(t)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	addr := "127.0.0.1:" + strconv.Itoa(port)
	node := redis.NewClient(&redis.Options{Addr: addr})
	defer node.Close()
	ctx := t.Context()
	deadline := time.Now().Add(10 * time.Second)
	wait := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("cluster node on %s: %s", addr, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("no answer", func() bool { return node.Ping(ctx).Err() == nil })
	if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatalf("cluster addslotsrange: %v", err)
	}
	wait("cluster state not ok", func() bool {
		info, err := node.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	return addr
}

func openCluster(t *testing.T, addr string) (*redisstore.Store, redis.UniversalClient) {
	t.Helper()
	opts, err := redisstore.ParseURL("redis://" + addr + "?cluster=true")
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("client %T, want a cluster client", client)
	}
	s := redisstore.New(client)
	t.Cleanup(func() { _ = s.Close() })
	return s, client
}

// The node refuses scripts that cross slots, so passing there means the
// scripts stay in one slot (and a cluster client can run every call).
func TestCluster_RefusesCrossSlotScripts(t *testing.T) {
	addr := startClusterNode(t)
	_, client := openCluster(t, addr)
	cross := redis.NewScript(`return redis.call('GET', ARGV[1])`)
	err := cross.Run(t.Context(), client, []string{"otpgate:{a}:x"}, "otpgate:{b}:y").Err()
	if err == nil {
		t.Fatal("a script reading a key of another slot ran: the node does not check slots, the conformance run proves nothing")
	}
}

// The conformance suite passes through a cluster client.
func TestCluster_Conformance(t *testing.T) {
	addr := startClusterNode(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, client := openCluster(t, addr)
		err := client.(*redis.ClusterClient).ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
			return c.FlushDB(ctx).Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
