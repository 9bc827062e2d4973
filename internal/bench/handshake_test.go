package bench_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/kit/internal/bench"
)

// TestHandshakeVariants checks that every handshake variant completes a
// storm with its tokens, and that the ones with tokens refuse a client
// without one, so that a broken variant fails here rather than skewing a
// ratio.
func TestHandshakeVariants(t *testing.T) {
	t.Parallel()
	for _, v := range bench.HandshakeVariants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(v.Handler())
			defer ts.Close()
			url := "ws" + strings.TrimPrefix(ts.URL, "http")
			var headers []http.Header
			if v.Headers != nil {
				headers = v.Headers()
			}
			if _, err := bench.Storm(url, headers, 2*bench.StormWorkers); err != nil {
				t.Fatalf("storm: %v", err)
			}
			if headers == nil {
				return
			}
			_, err := bench.Storm(url, nil, 1)
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("handshake without a token: %v, want 401", err)
			}
		})
	}
}

// BenchmarkHandshake runs a reconnect storm against every handshake
// variant: StormWorkers clients connecting at once, each completing the
// WebSocket handshake and dropping the connection, cycling through
// KnownTokens tokens. One op is one handshake. Each variant's run is
// interleaved, in rounds, with a storm against the bare coder/websocket
// upgrade over the same number of handshakes, and x-coder is the
// variant's handshakes/s over the reference's. allocs/op counts client
// and server, both in this process.
func BenchmarkHandshake(b *testing.B) {
	for _, v := range bench.HandshakeVariants() {
		b.Run(v.Name, func(b *testing.B) { benchHandshake(b, v) })
	}
}

func benchHandshake(b *testing.B, v bench.HandshakeVariant) {
	ref := bench.HandshakeVariants()[0]
	refURL, url := hsServer(b, ref), hsServer(b, v)
	var headers []http.Header
	if v.Headers != nil {
		headers = v.Headers()
	}
	// Warm up, and fill the verified-token cache: the storm is of known
	// tokens.
	for _, w := range []struct {
		url string
		h   []http.Header
	}{{refURL, nil}, {url, headers}} {
		if _, err := bench.Storm(w.url, w.h, 2*bench.KnownTokens); err != nil {
			b.Fatal(err)
		}
	}
	storm := func(url string, headers []http.Header) func(int) time.Duration {
		return func(n int) time.Duration {
			d, err := bench.Storm(url, headers, n)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	refTime, varTime := interleave(b, b.N >= 8*bench.StormWorkers, storm(refURL, nil), storm(url, headers))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/varTime.Seconds(), "handshakes/s")
	b.ReportMetric(refTime.Seconds()/varTime.Seconds(), "x-coder")
}

func hsServer(b *testing.B, v bench.HandshakeVariant) string {
	b.Helper()
	ts := httptest.NewServer(v.Handler())
	b.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}
