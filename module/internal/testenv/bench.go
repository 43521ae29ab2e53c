package testenv

import (
	"net/http"
	"strings"
	"testing"
)

// PostParallel posts body to url from b's parallel goroutines through
// client, reads each answer whole, requires the status want, and reports
// requests per second: the load of the send benchmarks.
func PostParallel(b *testing.B, client *http.Client, url, body string, want int) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf [512]byte
		for pb.Next() {
			req, err := http.NewRequest("POST", url, strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			for {
				if _, err := res.Body.Read(buf[:]); err != nil {
					break
				}
			}
			_ = res.Body.Close()
			if res.StatusCode != want {
				b.Errorf("status %d, want %d", res.StatusCode, want)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
