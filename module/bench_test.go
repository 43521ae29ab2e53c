package otpgate

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// BenchmarkCaddy_RefusalVsRespond measures, through one in-process Caddy,
// the refusals of an address that is over its send limit (otpgate refuses
// it by itself once the store has: no store round trip, no body read, no
// phone parse) against Caddy's own `respond` on the same server and
// client, so that the ratio of the two req/s figures is what the README
// reports:
//
//	go test -run '^$' -bench 'Caddy_RefusalVsRespond/.*/interleaved' -benchtime 20x ./module/
//	go test -run '^$' -bench Caddy_RefusalVsRespond -benchtime 3s -count 5 ./module/
func BenchmarkCaddy_RefusalVsRespond(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchCaddyRefusal(b, "store memory") })
	b.Run("redis", func(b *testing.B) { benchCaddyRefusal(b, "store redis "+testenv.StartRedis(b).URL()) })
}

func benchCaddyRefusal(b *testing.B, storeLine string) {
	respond, otpgate := testenv.FreePort(b), testenv.FreePort(b)
	testenv.LoadCaddyfile(b, fmt.Sprintf(`{
	admin off
	auto_https off
	otpgate {
		%s
		signup open
		create_user true
		limit ip 1 1h
	}
}

http://127.0.0.1:%d {
	respond "ok"
}

http://127.0.0.1:%d {
	otpgate
	respond "app"
}
`, storeLine, respond, otpgate))
	base := fmt.Sprintf("http://127.0.0.1:%d", otpgate)
	for i, want := range []int{200, 429} { // the store refuses the second send
		res, err := http.Post(base+"/auth/v1/otp", "application/json", strings.NewReader(fmt.Sprintf(`{"phone":"+1650555019%d"}`, i)))
		if err != nil {
			b.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != want {
			b.Fatalf("send %d: %d, want %d", i, res.StatusCode, want)
		}
	}
	b.Run("respond", func(b *testing.B) {
		benchPost(b, fmt.Sprintf("http://127.0.0.1:%d/auth/v1/otp", respond), http.StatusOK)
	})
	b.Run("otpgate_over_limit_address", func(b *testing.B) {
		benchPost(b, base+"/auth/v1/otp", http.StatusTooManyRequests)
	})
	// On a shared or busy machine the two runs above see different loads;
	// alternating short rounds of each (-benchtime Nx: N rounds) and taking
	// the median of the per-round ratios cancels that drift.
	b.Run("interleaved", func(b *testing.B) {
		respondURL := fmt.Sprintf("http://127.0.0.1:%d/auth/v1/otp", respond)
		var a, o, ratios []float64
		for range b.N {
			ra := rateFor(b, respondURL, http.StatusOK, 300*time.Millisecond)
			ro := rateFor(b, base+"/auth/v1/otp", http.StatusTooManyRequests, 300*time.Millisecond)
			a, o, ratios = append(a, ra), append(o, ro), append(ratios, ro/ra)
		}
		b.ReportMetric(median(a), "respond-req/s")
		b.ReportMetric(median(o), "otpgate-req/s")
		b.ReportMetric(median(ratios), "ratio")
	})
}

// rateFor posts to url from 8 keep-alive clients for d and returns the
// completed requests per second.
func rateFor(b *testing.B, url string, want int, d time.Duration) float64 {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [512]byte
			for time.Now().Before(deadline) {
				if err := testenv.PostOnce(client, url, `{"phone":"+14155550123"}`, want, buf[:]); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func benchPost(b *testing.B, url string, want int) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	b.Cleanup(tr.CloseIdleConnections)
	testenv.PostParallel(b, &http.Client{Transport: tr}, url, `{"phone":"+14155550123"}`, want)
}
