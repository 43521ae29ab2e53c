package gateway

// Benchmarks of send, verify and the gate (SPEC §5).
//
// Reproduce with
//
//	go test -run '^$' -bench . -benchtime 2000x ./module/gateway/
//	go test -run '^$' -bench Gate -benchtime 3s ./module/gateway/
//
// The Redis benchmarks start a private redis-server (see testenv.StartRedis)
// and send through the real Plivo sender to testenv's fake Plivo, so a
// send/s figure includes one local HTTP round trip to the fake provider.
// redis-cmds/op counts commands as the go-redis client sends them,
// redis-rtts/op the round trips (one per command, one per pipeline).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/sender/plivo"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
	"github.com/otpgate/otpgate/module/store/redisstore"
)

// benchCounter is a go-redis hook counting commands and round trips.
type benchCounter struct {
	cmds, rtts atomic.Int64
}

var _ redis.Hook = (*benchCounter)(nil)

func (c *benchCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *benchCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.cmds.Add(1)
		c.rtts.Add(1)
		return next(ctx, cmd)
	}
}

func (c *benchCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.cmds.Add(int64(len(cmds)))
		c.rtts.Add(1)
		return next(ctx, cmds)
	}
}

// mark returns a func that reports the commands and round trips per
// operation since mark was called.
func (c *benchCounter) mark(b *testing.B) func() {
	if c == nil {
		return func() {}
	}
	cmds0, rtts0 := c.cmds.Load(), c.rtts.Load()
	return func() {
		b.ReportMetric(float64(c.cmds.Load()-cmds0)/float64(b.N), "redis-cmds/op")
		b.ReportMetric(float64(c.rtts.Load()-rtts0)/float64(b.N), "redis-rtts/op")
	}
}

// benchRedis starts a private redis-server and returns a store whose client
// counts its commands.
func benchRedis(b *testing.B) (store.Store, *benchCounter) {
	b.Helper()
	srv := testenv.StartRedis(b)
	opts, err := redisstore.ParseURL(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	c := &benchCounter{}
	client.AddHook(c)
	st := redisstore.New(client)
	b.Cleanup(func() { _ = st.Close() })
	return st, c
}

// benchPlivo returns the real Plivo sender pointed at a fake Plivo.
func benchPlivo(b *testing.B) sender.Sender {
	b.Helper()
	fake := testenv.NewFakePlivo(b)
	s, err := plivo.New(plivo.Config{
		AuthID:    fake.AuthID,
		AuthToken: fake.AuthToken,
		From:      "+14155550100",
		APIURL:    fake.URL(),
		Timeout:   10 * time.Second,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchGateway is newEnv for benchmarks: a started gateway on the wall
// clock, following its store's revocation feed.
func benchGateway(b *testing.B, st store.Store, snd sender.Sender, opts ...option) (*Gateway, *Site) {
	b.Helper()
	cfg := baseConfig(st, snd)
	cfg.Sleep = func(context.Context, time.Duration) {}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	g.Start()
	b.Cleanup(g.Stop)
	waitFeed(b, g)
	return g, &Site{G: g, APIPrefix: "/auth/v1", LoginPath: "/auth/login", Gate: true}
}

// Distinct valid phones, shared by all benchmarks and grown on demand.
var benchPhoneList struct {
	sync.Mutex
	list []string
	next int // next candidate index
}

var benchAreaCodes = []string{"415", "212", "646", "312", "617", "206", "303", "512", "404", "305", "213", "702"}

// benchPhones returns n distinct valid US numbers (+1 AAA 555 LLLL first,
// then other exchanges), each accepted by phone.Parse.
func benchPhones(b *testing.B, n int) []string {
	p := &benchPhoneList
	p.Lock()
	defer p.Unlock()
	for len(p.list) < n {
		i := p.next
		p.next++
		line := i % 10000
		area := (i / 10000) % len(benchAreaCodes)
		exch := 555 + i/(10000*len(benchAreaCodes))
		if exch > 999 {
			b.Fatal("benchPhones: out of numbers")
		}
		num := fmt.Sprintf("+1%s%03d%04d", benchAreaCodes[area], exch, line)
		if _, err := phone.Parse(num); err == nil {
			p.list = append(p.list, num)
		}
	}
	return p.list[:n:n]
}

// benchIP is a distinct client IP per i, so the per-IP limit never refuses.
func benchIP(i int) string {
	return "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
}

func benchIPs(n int) []string {
	ips := make([]string, n)
	for i := range ips {
		ips[i] = benchIP(i + 1)
	}
	return ips
}

// warmUp runs one send and verify so that the store's scripts are loaded
// (a first EVALSHA costs an extra EVAL) and connections are open.
func warmUp(b *testing.B, g *Gateway, rec *recSender) {
	b.Helper()
	const p = "+16505550199" // outside benchPhones
	ctx := context.Background()
	if _, err := g.Send(ctx, sendRequest{Phone: p}, "192.0.2.1", false); err != nil {
		b.Fatalf("warm-up send: %v", err)
	}
	if rec == nil {
		return
	}
	if _, err := g.Verify(ctx, verifyRequest{Type: "sms", Phone: p, Token: rec.lastCode(b, p)}, "192.0.2.1"); err != nil {
		b.Fatalf("warm-up verify: %v", err)
	}
}

func benchSend(b *testing.B, st store.Store, cnt *benchCounter, snd sender.Sender) {
	g, _ := benchGateway(b, st, snd)
	warmUp(b, g, nil)
	phones, ips := benchPhones(b, b.N), benchIPs(b.N)
	ctx := context.Background()
	report := cnt.mark(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := g.Send(ctx, sendRequest{Phone: phones[i]}, ips[i], false); err != nil {
			b.Fatalf("send %s: %v", phones[i], err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	report()
}

// benchSendHTTP posts to /auth/v1/otp on a test server in front of
// Site.Handle; client and server allocations are both counted.
func benchSendHTTP(b *testing.B, st store.Store, cnt *benchCounter, snd sender.Sender) {
	g, site := benchGateway(b, st, snd)
	warmUp(b, g, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, done, _ := site.Handle(w, r, r.Header.Get("X-Bench-IP")); !done {
			http.NotFound(w, r)
		}
	}))
	b.Cleanup(srv.Close)
	client := srv.Client()
	phones, ips := benchPhones(b, b.N), benchIPs(b.N)
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = `{"phone":"` + phones[i] + `"}`
	}
	url := srv.URL + "/auth/v1/otp"
	report := cnt.mark(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req, err := http.NewRequest("POST", url, strings.NewReader(bodies[i]))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Bench-IP", ips[i])
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var buf [512]byte
		for {
			if _, err := res.Body.Read(buf[:]); err != nil {
				break
			}
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("send %s: %d", phones[i], res.StatusCode)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	report()
}

func benchVerify(b *testing.B, st store.Store, cnt *benchCounter) {
	rec := &recSender{}
	g, _ := benchGateway(b, st, rec)
	warmUp(b, g, rec)
	phones, ips := benchPhones(b, b.N), benchIPs(b.N)
	ctx := context.Background()
	reqs := make([]verifyRequest, b.N)
	for i := range b.N {
		if _, err := g.Send(ctx, sendRequest{Phone: phones[i]}, ips[i], false); err != nil {
			b.Fatalf("send %s: %v", phones[i], err)
		}
	}
	rec.mu.Lock()
	codes := make(map[string]string, len(rec.msgs))
	for _, m := range rec.msgs {
		codes[m.To] = m.Code
	}
	rec.mu.Unlock()
	for i := range reqs {
		reqs[i] = verifyRequest{Type: "sms", Phone: phones[i], Token: codes[phones[i]]}
	}
	report := cnt.mark(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := g.Verify(ctx, reqs[i], ips[i]); err != nil {
			b.Fatalf("verify %s: %v", phones[i], err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
	report()
}

func BenchmarkSend_RedisPlivo(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		st, cnt := benchRedis(b)
		benchSend(b, st, cnt, benchPlivo(b))
	})
	b.Run("http", func(b *testing.B) {
		st, cnt := benchRedis(b)
		benchSendHTTP(b, st, cnt, benchPlivo(b))
	})
}

func BenchmarkSend_Memory(b *testing.B) {
	b.Run("recsender", func(b *testing.B) { benchSend(b, memstore.New(), nil, &recSender{}) })
	b.Run("plivo", func(b *testing.B) { benchSend(b, memstore.New(), nil, benchPlivo(b)) })
}

func BenchmarkVerify_Redis(b *testing.B) {
	st, cnt := benchRedis(b)
	benchVerify(b, st, cnt)
}

func BenchmarkVerify_Memory(b *testing.B) {
	benchVerify(b, memstore.New(), nil)
}

// benchGateRequest logs in once and returns a gated request carrying the
// access token as a bearer token, already verified and cached.
func benchGateRequest(b *testing.B, roles bool) (*Site, func() *http.Request) {
	rec := &recSender{}
	const p = "+14155550123"
	var roster *Roster
	if roles {
		var err error
		if roster, err = NewRoster(map[string][]string{p: {"admin", "ops"}}, ""); err != nil {
			b.Fatal(err)
		}
	}
	g, site := benchGateway(b, memstore.New(), rec, func(c *Config) { c.Roster = roster })
	if roles {
		site.Roles = []string{"ops"}
	}
	ctx := context.Background()
	if _, err := g.Send(ctx, sendRequest{Phone: p}, "192.0.2.1", false); err != nil {
		b.Fatal(err)
	}
	out, err := g.Verify(ctx, verifyRequest{Type: "sms", Phone: p, Token: rec.lastCode(b, p)}, "192.0.2.1")
	if err != nil {
		b.Fatal(err)
	}
	newReq := func() *http.Request {
		r := httptest.NewRequest("GET", "/app/dashboard", nil)
		r.Header.Set("Authorization", "Bearer "+out.AccessToken)
		r.Header.Set("Accept", "application/json")
		return r
	}
	// The first request verifies the signature and fills the cache.
	w := httptest.NewRecorder()
	if id, done, _ := site.Handle(w, newReq(), "192.0.2.1"); done || id == nil {
		b.Fatalf("gate refused: %d %s", w.Code, w.Body.String())
	}
	return site, newReq
}

// resetIdentity undoes what Handle adds to an allowed request.
func resetIdentity(h http.Header) {
	delete(h, HeaderUserID)
	delete(h, HeaderPhone)
	delete(h, HeaderSessionID)
	delete(h, HeaderRoles)
}

func BenchmarkGate_CachedToken(b *testing.B) {
	b.Run("no_roles", func(b *testing.B) { benchGateCached(b, false) })
	b.Run("site_roles", func(b *testing.B) { benchGateCached(b, true) })
}

func benchGateCached(b *testing.B, roles bool) {
	site, newReq := benchGateRequest(b, roles)
	r := newReq()
	w := httptest.NewRecorder() // an allowed request writes nothing
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		resetIdentity(r.Header)
		if id, done, _ := site.Handle(w, r, "192.0.2.1"); done || id == nil {
			b.Fatalf("gate refused: %d", w.Code)
		}
	}
}

func BenchmarkGate_ParallelCachedToken(b *testing.B) {
	b.Run("no_roles", func(b *testing.B) { benchGateParallel(b, false) })
	b.Run("site_roles", func(b *testing.B) { benchGateParallel(b, true) })
}

func benchGateParallel(b *testing.B, roles bool) {
	site, newReq := benchGateRequest(b, roles)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newReq()
		w := httptest.NewRecorder()
		for pb.Next() {
			resetIdentity(r.Header)
			if id, done, _ := site.Handle(w, r, "192.0.2.1"); done || id == nil {
				b.Errorf("gate refused: %d", w.Code)
				return
			}
		}
	})
}

// Refusals under an SMS-pumping flood from one address: once the store has
// said the address is over its limit, the gateway refuses it by itself
// (refusals.go) before reading the body. Compared with a trivial handler
// (what Caddy's `respond` does) behind the same HTTP server and client:
//
//	go test -run '^$' -bench 'Refusal' -benchtime 3s ./module/gateway/
//
// refusals/s of over_limit_address over trivial_handler is the ratio the
// README reports; BenchmarkCaddy_RefusalVsRespond (module/) measures the
// same through Caddy itself.
func BenchmarkRefusal(b *testing.B) {
	b.Run("trivial_handler", func(b *testing.B) {
		benchRefusals(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		}), http.StatusOK)
	})
	b.Run("over_limit_address/memory", func(b *testing.B) {
		benchRefusals(b, overLimitSite(b, memstore.New()), http.StatusTooManyRequests)
	})
	b.Run("over_limit_address/redis", func(b *testing.B) {
		st, _ := benchRedis(b)
		benchRefusals(b, overLimitSite(b, st), http.StatusTooManyRequests)
	})
	b.Run("malformed_phone/memory", func(b *testing.B) {
		_, site := benchGateway(b, memstore.New(), &recSender{})
		benchRefusalsBody(b, siteHandler(site), http.StatusBadRequest, `{"phone":"+1415555"}`)
	})
}

func siteHandler(site *Site) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, done, _ := site.Handle(w, r, "198.51.100.66"); !done {
			http.NotFound(w, r)
		}
	})
}

// overLimitSite is a gateway whose store has refused the benchmark's
// address once already.
func overLimitSite(b *testing.B, st store.Store) http.Handler {
	g, site := benchGateway(b, st, &recSender{}, func(c *Config) { c.IPLimit = store.Limit{N: 1, Window: time.Hour} })
	ctx := context.Background()
	if _, err := g.Send(ctx, sendRequest{Phone: "+16505550198"}, "198.51.100.66", false); err != nil {
		b.Fatal(err)
	}
	if _, err := g.Send(ctx, sendRequest{Phone: "+16505550197"}, "198.51.100.66", false); apierr.As(err).Code != apierr.OverRequestLimit {
		b.Fatalf("second send: %v, want the IP limit", err)
	}
	return siteHandler(site)
}

func benchRefusals(b *testing.B, h http.Handler, want int) {
	benchRefusalsBody(b, h, want, `{"phone":"+14155550123"}`)
}

// benchRefusalsBody posts body to h through a local HTTP server from
// parallel keep-alive clients and reports requests per second.
func benchRefusalsBody(b *testing.B, h http.Handler, want int, body string) {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = 64
	testenv.PostParallel(b, &http.Client{Transport: tr}, srv.URL+"/auth/v1/otp", body, want)
}

// The Redis budget of SPEC section 5: at most 2 commands per send and per
// verify, and none per gated request once the token is cached.
func TestRedisBudget_TwoPerSendTwoPerVerifyNonePerGatedRequest(t *testing.T) {
	srv := testenv.StartRedis(t)
	opts, err := redisstore.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	var n redisstore.CommandCounter
	client.AddHook(&n)
	st := redisstore.New(client)
	t.Cleanup(func() { _ = st.Close() })
	e := newEnv(t, st)
	e.login("+14155550100") // loads the scripts into Redis

	cost := func(f func()) (commands, trips int64) {
		before, beforeTrips := n.Count(), n.RoundTrips()
		f()
		return n.Count() - before, n.RoundTrips() - beforeTrips
	}
	if c, rt := cost(func() { e.send(alice) }); c != 2 || rt != 2 {
		t.Errorf("send cost %d Redis commands in %d round trips, want 2 in 2", c, rt)
	}
	// A first sign-in also writes the user index (another hash slot), in
	// the same round trip as the consume script.
	var s resp
	if c, rt := cost(func() { s = e.verify(alice, e.sender.lastCode(t, alice)) }); c != 3 || rt != 2 || s.status != 200 {
		t.Errorf("first verify cost %d Redis commands in %d round trips (status %d), want 3 in 2", c, rt, s.status)
	}
	e.clock.Advance(time.Minute)
	e.send(alice)
	var again resp
	if c, rt := cost(func() { again = e.verify(alice, e.sender.lastCode(t, alice)) }); c != 2 || rt != 2 || again.status != 200 {
		t.Errorf("verify of a known user cost %d Redis commands in %d round trips (status %d), want 2 in 2", c, rt, again.status)
	}
	e.do("GET", "/app", "", bearer(s)...) // first use verifies and caches
	if c, _ := cost(func() {
		for i := 0; i < 10; i++ {
			if r := e.do("GET", "/app", "", bearer(s)...); r.status != 200 {
				t.Fatalf("gated request %d", r.status)
			}
		}
	}); c != 0 {
		t.Errorf("10 gated requests cost %d Redis commands, want 0", c)
	}
}
