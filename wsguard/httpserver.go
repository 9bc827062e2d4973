package wsguard

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsguard/kit/errlog"
)

// Defaults of the http.Server built by [NewHTTPServer], [Serve] and
// [ListenAndServe]. The connection caps count requests being served and
// upgraded sockets; these bound every other connection's life, so that an
// idle, slow or refused client cannot hold a file descriptor either.
const (
	// DefaultHeaderTimeout bounds reading a request's headers, from the
	// first byte of a new connection or of a kept-alive one's next request
	// (http.Server.ReadHeaderTimeout): slowloris.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds reading a whole request and writing its
	// response (http.Server.ReadTimeout and WriteTimeout). Neither applies
	// to an upgraded connection: net/http clears both deadlines when the
	// socket is hijacked, and the WebSocket limits take over.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultKeepAliveTimeout is how long a kept-alive connection may wait
	// for its next request (http.Server.IdleTimeout).
	DefaultKeepAliveTimeout = 30 * time.Second
	// DefaultMaxHeaderBytes bounds a request's header block
	// (http.Server.MaxHeaderBytes, over it: 431 and the connection closes).
	// It holds a token of the 8 KiB the auth package accepts in each of the
	// places a client may put it, and then some; net/http's own default is
	// 1 MiB.
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultShutdownTimeout bounds a graceful shutdown: the WebSocket
	// drain and the end of requests in flight.
	DefaultShutdownTimeout = 5 * time.Second
)

// ServeOption configures [NewHTTPServer], [Serve] and [ListenAndServe].
type ServeOption func(*serveConfig)

type serveConfig struct {
	logger          *slog.Logger
	drain           []*Server
	shutdownTimeout time.Duration
	configure       []func(*http.Server)

	mistake           error // the first configuration mistake among the options
	certFile, keyFile string
	reloadInterval    time.Duration
	credentials       bool
	certs             *certSource // with WithTLS
}

func newServeConfig(h http.Handler, opts []ServeOption) serveConfig {
	c := serveConfig{shutdownTimeout: DefaultShutdownTimeout, reloadInterval: DefaultCertReloadInterval}
	if s, ok := h.(*Server); ok {
		c.drain = append(c.drain, s)
	}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil && len(c.drain) > 0 {
		c.logger = c.drain[0].log
	}
	c.logger = errlog.OrDefault(c.logger)
	if c.mistake == nil && c.certFile != "" {
		c.certs = newCertSource(&c)
	}
	return c
}

// WithDrain names the WebSocket servers that [Serve] drains when it shuts
// down, for a handler that routes to them (a mux). A handler that is
// itself a *Server is drained without it. The first server's logger is
// the HTTP server's too, unless [WithServeLogger] sets one.
func WithDrain(servers ...*Server) ServeOption {
	return func(c *serveConfig) {
		for _, s := range servers {
			if s != nil && !slices.Contains(c.drain, s) {
				c.drain = append(c.drain, s)
			}
		}
	}
}

// WithServeLogger sets the logger the http.Server writes its errors to
// (http.Server.ErrorLog) and shutdown writes its warnings to. Without it
// the logger is the drained server's (see [WithDrain]), else
// slog.Default().
func WithServeLogger(l *slog.Logger) ServeOption {
	return func(c *serveConfig) { c.logger = l }
}

// WithShutdownTimeout bounds a graceful shutdown; the default is
// [DefaultShutdownTimeout]. When it ends, the WebSocket connections still
// open are dropped without a close handshake and requests still in flight
// are cut. Zero or negative means no bound: shutdown waits for every
// connection.
func WithShutdownTimeout(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.shutdownTimeout = d }
}

// WithHTTPServer runs f on the http.Server once the defaults are set: the
// place to change a timeout (a handler beside the socket that streams
// server-sent events needs longer request timeouts) or to set a field this
// package leaves alone. Setting a field to zero turns its bound off, as
// http.Server documents.
func WithHTTPServer(f func(*http.Server)) ServeOption {
	return func(c *serveConfig) { c.configure = append(c.configure, f) }
}

// NewHTTPServer returns an http.Server for h with every connection's life
// bounded:
//
//   - a request's headers must arrive within [DefaultHeaderTimeout] (10 s);
//   - a request must be read and its response written within
//     [DefaultRequestTimeout] (30 s) each; an upgraded WebSocket is not
//     bound by either;
//   - a kept-alive connection waits at most [DefaultKeepAliveTimeout]
//     (30 s) for its next request;
//   - a header block over [DefaultMaxHeaderBytes] (32 KiB) is refused with
//     431 and its connection closed;
//   - the server's own errors (a panic serving a request, a failed Accept)
//     are logged one escaped, bounded line each (see errlog.ErrAttr).
//
// A handshake refused with [Reject], as every built-in guard refuses,
// closes its connection at once; any other kept-alive connection waits at
// most the keep-alive timeout. Change any bound with [WithHTTPServer].
//
// Shutdown of the returned server does not drain WebSocket connections:
// net/http forgets a connection once it is hijacked. Use [Serve], or call
// [Server.Shutdown] and http.Server.Shutdown and wait for both.
func NewHTTPServer(h http.Handler, opts ...ServeOption) *http.Server {
	c := newServeConfig(h, opts)
	if c.mistake != nil {
		panic(c.mistake)
	}
	return c.httpServer(h)
}

func (c *serveConfig) httpServer(h http.Handler) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: DefaultHeaderTimeout,
		ReadTimeout:       DefaultRequestTimeout,
		WriteTimeout:      DefaultRequestTimeout,
		IdleTimeout:       DefaultKeepAliveTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          log.New(errorLogWriter{c.logger}, "", 0),
	}
	if c.certs != nil {
		hs.TLSConfig = tlsConfig(c.certs.getCertificate)
		hs.Protocols = http1Only()
	}
	for _, f := range c.configure {
		f(hs)
	}
	return hs
}

// errorLogWriter turns each line net/http logs into one slog line, its
// text escaped and bounded: a server error can quote what a client sent.
type errorLogWriter struct{ l *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	text := strings.TrimSuffix(string(p), "\n")
	if strings.HasPrefix(text, "http: TLS handshake error") {
		// A client refused during the handshake (an old TLS version, a
		// certificate it does not trust, a scanner): the client's doing.
		errlog.Log(context.Background(), w.l, "TLS handshake refused", errlog.NewError(errlog.Protocol, errors.New(text)))
		return len(p), nil
	}
	level := slog.LevelWarn
	if strings.HasPrefix(text, "http: panic serving") {
		level = slog.LevelError
	}
	w.l.LogAttrs(context.Background(), level, "http server error", errlog.ErrAttr(errors.New(text)))
	return len(p), nil
}

// ListenAndServe listens on the TCP address addr and calls [Serve].
func ListenAndServe(ctx context.Context, addr string, h http.Handler, opts ...ServeOption) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, h, opts...)
}

// Serve serves h on ln with the http.Server of [NewHTTPServer] until ctx
// ends, then shuts down gracefully and returns nil once the shutdown is
// over: the listener closes at once, so reconnecting clients are refused
// instead of served; every WebSocket server drained ([WithDrain]; h
// itself when it is a *Server) closes its connections with 1001 and waits
// for them, as [Server.Shutdown] does; and the http.Server waits for the
// requests in flight. All of it is bounded by the shutdown timeout
// ([WithShutdownTimeout]); what is still open then is dropped and logged
// at warn level. A process that returns from main when Serve returns
// exits after the drain, not in the middle of it.
//
// With [WithTLS], Serve serves TLS on ln (wss://) and reloads the
// certificate on SIGHUP while it runs; the process then no longer ends on
// SIGHUP. With [WithCredentials] and no TLS, it warns when ln takes
// connections from other hosts.
//
// Serve closes ln. It returns a configuration mistake or a certificate
// that does not load before serving anything. It returns early with the error of the listener if
// Accept fails, after the same shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opts ...ServeOption) error {
	c := newServeConfig(h, opts)
	if err := c.mistake; err != nil {
		ln.Close()
		return err
	}
	if c.certs != nil {
		if err := c.certs.loaded(); err != nil {
			ln.Close()
			return err
		}
		defer c.reloadOnHangup()()
	}
	c.warnCleartext(ln)
	hs := c.httpServer(h)
	served := make(chan error, 1)
	if c.certs != nil {
		go func() { served <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- hs.Serve(ln) }()
	}

	var serveErr error
	select {
	case err := <-served:
		serveErr = err
	case <-ctx.Done():
	}
	c.shutdown(context.WithoutCancel(ctx), hs)
	if serveErr == nil {
		serveErr = <-served
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		return nil
	}
	return serveErr
}

// shutdown stops hs and drains the WebSocket servers at the same time,
// within the shutdown timeout.
func (c *serveConfig) shutdown(ctx context.Context, hs *http.Server) {
	if c.shutdownTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.shutdownTimeout)
		defer cancel()
	}
	var wg sync.WaitGroup
	for _, s := range c.drain {
		wg.Go(func() {
			if err := s.Shutdown(ctx); err != nil {
				c.logger.LogAttrs(ctx, slog.LevelWarn, "dropped WebSocket connections that did not close in time", errlog.ErrAttr(err))
			}
		})
	}
	if err := hs.Shutdown(ctx); err != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, "cut HTTP requests that did not end in time", errlog.ErrAttr(err))
		_ = hs.Close()
	}
	wg.Wait()
}
