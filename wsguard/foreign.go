package wsguard

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wsguard/kit/errlog"
)

// Guard returns h behind the Server's own guards, for a WebSocket handler
// the Server does not run (one written with gorilla/websocket, say) on
// another path of the same service. A request to it passes what a request
// to the Server passes, in the same order and through the same instances:
// client IP, IP filter, handshake rate, connection caps, Origin, then the
// handshake middleware ([WithHandshake]: authentication, caps per
// subject). So a client IP holds at most the per-IP cap of connections
// across the Server and every handler it guards, not that many on each.
//
// Refusals are answered, logged and reported as the Server's are, to its
// logger and observer, which h also finds in the request context
// ([LoggerFrom], [ObserverFrom]). When h hijacks the connection (upgrades
// it), the observer gets [EventHandshakeAccepted] and [EventConnOpened],
// and [EventConnClosed] when h returns, each with the Request and no Conn;
// what happens on the socket after that is h's business: message limits,
// rates and idle timeouts are the Server's only for its own connections.
//
// Drain: while the Server shuts down, new requests get 503. [Server.Shutdown]
// cancels the request context of every h still running (its cause is
// errlog.Canceled): a handler that watches it can close its connection
// with 1001 itself. Shutdown waits for every h to return; when its context
// ends first, it closes the socket of every hijacked connection, without a
// close frame (the Server cannot write one safely beside h's own writes),
// and waits for h to return, which a handler blocked reading that socket
// then does. A handler that did not hijack is waited for like any other
// HTTP request.
//
// Subprotocols: a browser that sends its token as the "bearer.<jwt>"
// subprotocol entry sends an application protocol beside it
// ("bearer.<jwt>", "wsguard.v1"); the authentication middleware removes
// the token entry, and h's upgrader must list the application protocol
// (gorilla's Upgrader.Subprotocols) for the handshake to select it. An
// upgrader that lists none selects none, and a browser that asked for one
// fails the handshake.
//
// [Server.Open] counts the Server's own connections only.
//
// Guard panics on a nil h.
func (s *Server) Guard(h http.Handler) http.Handler {
	if h == nil {
		misconfigured("Guard(nil)", "needs a handler")
	}
	next := h
	for i := len(s.cfg.handshake) - 1; i >= 0; i-- {
		next = s.cfg.handshake[i](next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, h := s.newHandshake(r)
		f := &foreignConn{srv: s, r: r}
		if !s.registerForeign(f) {
			Reject(w, r, nil, errlog.NewError(errlog.Unavailable, errDraining))
			return
		}
		defer s.unregisterForeign(f)
		if !s.admit(w, r, h) {
			return
		}
		defer h.leave()
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		f.mu.Lock()
		f.cancel = cancel
		drained := f.drained
		f.mu.Unlock()
		if drained {
			cancel(errlog.NewError(errlog.Canceled, errDraining))
		}
		f.r = r.WithContext(ctx)
		next.ServeHTTP(&foreignWriter{ResponseWriter: w, f: f}, f.r)
	})
}

// foreignConn is one request served by a handler behind [Server.Guard].
type foreignConn struct {
	srv *Server
	r   *http.Request

	mu      sync.Mutex
	cancel  context.CancelCauseFunc // nil until the guards admit the request
	nc      net.Conn                // the hijacked socket, or nil
	opened  time.Time
	drained bool // Shutdown canceled it
	cut     bool // Shutdown closed its socket
}

func (s *Server) registerForeign(f *foreignConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	if s.foreign == nil {
		s.foreign = make(map[*foreignConn]struct{})
	}
	s.foreign[f] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) unregisterForeign(f *foreignConn) {
	f.mu.Lock()
	nc, opened, cut := f.nc, f.opened, f.cut
	f.mu.Unlock()
	if nc != nil {
		f.closed(opened, cut)
	}
	s.mu.Lock()
	delete(s.foreign, f)
	s.mu.Unlock()
	s.wg.Done()
}

// foreignConns returns the requests being served behind Guard. s.mu is held.
func (s *Server) foreignConns() []*foreignConn {
	fs := make([]*foreignConn, 0, len(s.foreign))
	for f := range s.foreign {
		fs = append(fs, f)
	}
	return fs
}

// drain cancels the request's context: the first step of a shutdown.
func (f *foreignConn) drain() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained = true
	if f.cancel != nil {
		f.cancel(errlog.NewError(errlog.Canceled, errDraining))
	}
}

// cutSocket closes the hijacked socket, now or when it is hijacked: the
// last step of a shutdown whose context ended.
func (f *foreignConn) cutSocket() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
	if f.nc != nil {
		_ = f.nc.Close()
	}
}

// hijacked records the socket h took over and reports the upgrade.
func (f *foreignConn) hijacked(nc net.Conn) {
	f.mu.Lock()
	f.nc, f.opened = nc, time.Now()
	if f.cut {
		_ = nc.Close()
	}
	f.mu.Unlock()
	if o := f.srv.obs; o != nil {
		ctx := f.r.Context()
		o.Observe(ctx, Event{Kind: EventHandshakeAccepted, Request: f.r})
		o.Observe(ctx, Event{Kind: EventConnOpened, Request: f.r})
	}
}

// closed reports and logs the end of a hijacked connection: the handler
// has returned.
func (f *foreignConn) closed(opened time.Time, cut bool) {
	d := time.Since(opened)
	var err error
	if cut {
		err = errlog.NewError(errlog.Canceled, errForeignCut)
	}
	ctx := f.r.Context()
	if o := f.srv.obs; o != nil {
		o.Observe(ctx, Event{Kind: EventConnClosed, Code: errlog.CodeOf(err), Err: err, Duration: d, Request: f.r})
	}
	attrs := []slog.Attr{
		slog.String(errlog.KeyRemote, ClientIP(f.r).String()),
		slog.Any("path", errlog.Untrusted(f.r.URL.Path)),
		slog.Duration("duration", d),
	}
	if sub := SubjectFrom(ctx); sub != "" {
		attrs = append(attrs, slog.String(errlog.KeySub, sub))
	}
	if err == nil {
		f.srv.log.LogAttrs(ctx, slog.LevelDebug, "guarded connection closed", attrs...)
		return
	}
	errlog.Log(ctx, f.srv.log, "guarded connection closed", err, attrs...)
}

var errForeignCut = errors.New("socket closed at shutdown: the handler outlived the drain")

// foreignWriter hands the handler behind Guard the ResponseWriter, and
// records the socket when the handler hijacks it.
type foreignWriter struct {
	http.ResponseWriter
	f *foreignConn
}

// Hijack implements http.Hijacker.
func (w *foreignWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.f.hijacked(nc)
	return nc, brw, nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (w *foreignWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
