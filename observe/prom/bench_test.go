package prom_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/kit/internal/bench"
	"github.com/wsguard/kit/observe/prom"
	"github.com/wsguard/kit/wsguard"
)

// BenchmarkObservedEcho is internal/bench's guarded echo with the
// Prometheus observer on: allocs/msg must stay 0, as without it.
func BenchmarkObservedEcho(b *testing.B) {
	obs, err := prom.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	})
	srv := wsguard.New(echo, wsguard.WithObserver(obs), wsguard.WithLogger(slog.New(slog.DiscardHandler)),
		wsguard.WithMessageRate(1e9, 1e9))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	v := bench.Variant{Name: "observed", Payload: bench.Text}
	l, err := bench.Open(v, "ws"+strings.TrimPrefix(ts.URL, "http"), 4, 1<<10)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.Reserve(4 + b.N)
	if _, err := l.Run(4); err != nil { // warm up
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	a := bench.Allocs()
	if _, err := l.Run(b.N); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(bench.Allocs()-a)/float64(b.N), "allocs/msg")
}
