package testenv

import (
	"fmt"
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
			if err := PostOnce(client, url, body, want, buf[:]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// PostOnce posts body to url as JSON, reads the answer whole into buf's
// space (so the connection is reused) and requires the status want.
func PostOnce(client *http.Client, url, body string, want int, buf []byte) error {
	res, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	for {
		if _, err := res.Body.Read(buf); err != nil {
			break
		}
	}
	_ = res.Body.Close()
	if res.StatusCode != want {
		return fmt.Errorf("status %d, want %d", res.StatusCode, want)
	}
	return nil
}
