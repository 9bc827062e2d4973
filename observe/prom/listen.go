package prom

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsguard/kit/wsguard"
)

// Listen serves the metrics of g at /metrics on addr, a listener of its
// own so that it can stay off the public network the sockets face. It
// returns the address it listens on and a stop function that shuts the
// listener down. Its connections are bounded as [wsguard.NewHTTPServer]
// bounds them. A nil logger means slog.Default().
func Listen(addr string, g prometheus.Gatherer, logger *slog.Logger) (net.Addr, func(), error) {
	if g == nil {
		return nil, nil, errors.New("prom: Listen(addr, nil, ...): needs a prometheus.Gatherer")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	hs := wsguard.NewHTTPServer(mux, wsguard.WithServeLogger(logger))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	return ln.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}
