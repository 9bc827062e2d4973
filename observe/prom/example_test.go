package prom_test

import (
	"context"
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsguard/kit/observe/prom"
	"github.com/wsguard/kit/wsguard"
)

// Metrics go to a registry of their own, served on a listener apart from
// the WebSocket one.
func Example() {
	reg := prometheus.NewRegistry()
	obs, err := prom.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	}), wsguard.WithObserver(obs))

	metrics := http.NewServeMux()
	metrics.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	_, _ = srv, metrics // http.ListenAndServe("127.0.0.1:9091", metrics) and the app's listener for srv
}
