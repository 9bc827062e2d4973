package wsguard

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/wsguard/kit/errlog"
)

// Server is an http.Handler that guards the handshake, upgrades to
// WebSocket and runs each connection's message loop. Create it with [New].
type Server struct {
	cfg      config
	handler  Handler
	log      *slog.Logger
	obs      Observer // nil: no event is built
	scope    scope    // log and obs, handed down in the request context
	idPrefix string
	nextID   atomic.Uint64
	bufs     sync.Pool

	// The pre-upgrade guards, run in line by admit through the same
	// methods as their Handlers, and the application's handshake
	// middleware around upgrade (nil when none).
	handshakes *HandshakeLimit
	connLimit  *ConnLimit
	origin     *OriginCheck // nil with InsecureSkipOriginCheck
	next       http.Handler

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	draining bool
	wg       sync.WaitGroup
	foreign  map[*foreignConn]struct{} // served behind Guard; made on first use
}

var errDraining = errors.New("server is shutting down")

// New returns a Server that passes every message to h. With no options it
// applies all the defaults described in the package documentation. New
// panics on a nil h and on an invalid option, with a message naming the
// option and its value, as the package documentation describes: a
// misconfigured guard must not start serving.
func New(h Handler, opts ...Option) *Server {
	if h == nil {
		misconfigured("New(nil, ...)", "needs a Handler")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.anyOrigin && len(cfg.origins) > 0 {
		misconfigured(fmt.Sprintf("WithOrigins(%q)", cfg.origins), "has no effect beside InsecureSkipOriginCheck")
	}
	if cfg.pingInterval > 0 && cfg.idleTimeout > 0 && cfg.pingInterval >= cfg.idleTimeout {
		// A peer could answer no ping before it is judged idle.
		misconfigured(fmt.Sprintf("WithPingInterval(%v) with WithIdleTimeout(%v)", cfg.pingInterval, cfg.idleTimeout),
			"the ping interval must be shorter than the idle timeout")
	}
	s := &Server{
		cfg:      cfg,
		handler:  NewChain(cfg.middleware...).Then(h),
		log:      errlog.OrDefault(cfg.logger),
		obs:      cfg.observer,
		idPrefix: newIDPrefix(),
		conns:    make(map[*Conn]struct{}),
	}
	s.scope = scope{log: s.log, obs: s.obs}
	s.initGuards()
	return s
}

// initGuards builds the pre-upgrade guards. They run in the order the
// design gives (client IP, IP filter, handshake rate, connection caps,
// Origin, then the application's handshake middleware), each through the
// method its Handler calls, so that a guard refuses, logs and reports the
// same whether a Server runs it or it is composed by hand. The built-in
// ones are called in line by admit rather than chained: a chained
// middleware's frame would stay on the serving goroutine's stack for the
// connection's whole life (see [Server.accept]).
func (s *Server) initGuards() {
	s.handshakes = NewHandshakeLimit(s.cfg.handshakeRate, s.cfg.handshakeBurst)
	s.handshakes.store = s.cfg.handshakeStore
	s.connLimit = NewConnLimit(s.cfg.maxConns, s.cfg.maxConnsPerIP)
	s.connLimit.store = s.cfg.connStore
	if !s.cfg.anyOrigin {
		oc, err := NewOriginCheck(s.cfg.origins)
		if err != nil {
			// WithOrigins checked each pattern.
			panic("wsguard: " + err.Error())
		}
		s.origin = oc
	}
	if len(s.cfg.handshake) > 0 {
		var next http.Handler = http.HandlerFunc(s.upgrade)
		for i := len(s.cfg.handshake) - 1; i >= 0; i-- {
			next = s.cfg.handshake[i](next)
		}
		s.next = next
	}
}

// admit runs the built-in guards on r, whose context is h, through the
// methods their Handlers call: on a refusal the guard has answered and
// admit returns false; otherwise h holds the resolved client IP and the
// connection slot, which h.leave gives back.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, h *handshake) bool {
	if p := s.cfg.realIP; p != nil {
		ip, ok := p.resolve(w, r)
		if !ok {
			return false
		}
		h.resolved = ip
		h.ip = &h.resolved
	}
	if f := s.cfg.ipFilter; f != nil && !f.admit(w, r) {
		return false
	}
	if !s.handshakes.admit(w, r) {
		return false
	}
	if !s.connLimit.admit(w, r, &h.slot) {
		return false
	}
	if s.origin != nil && !s.origin.admit(w, r) {
		h.leave()
		return false
	}
	return true
}

// newHandshake returns r with a handshake of its own as its context.
func (s *Server) newHandshake(r *http.Request) (*http.Request, *handshake) {
	h := &handshake{Context: r.Context(), scope: &s.scope, limit: s.connLimit}
	return r.WithContext(h), h
}

func newIDPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// ServeHTTP runs the guards and, when they all pass, upgrades the request
// and serves the connection until it ends.
//
// Every guard and middleware installed on the server, and the connection
// after the upgrade, see the server's logger and observer in the request
// context ([LoggerFrom], [ObserverFrom]).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// This frame and upgrade's stay on the serving goroutine's stack for
	// the connection's whole life: they are kept small (the work is in
	// frames that are gone by then), so that the GC can shrink an idle
	// connection's stack back to its minimum.
	r, release := s.enter(w, r)
	if release == nil {
		return
	}
	defer release() // also when a handshake middleware panics
	if s.next != nil {
		s.next.ServeHTTP(w, r)
		return
	}
	s.upgrade(w, r)
}

// enter runs the guards on r. It returns the request to serve and the
// connection slot's release, or a nil release when r was refused. The
// release is a function, not the handshake's method called in the
// deferring frame, because that frame stays on the stack for the
// connection's life (see [Server.ServeHTTP]): a deferred method call
// would keep its receiver there twice.
//
//go:noinline
func (s *Server) enter(w http.ResponseWriter, r *http.Request) (*http.Request, func()) {
	r, h := s.newHandshake(r)
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		Reject(w, r, nil, errlog.NewError(errlog.Unavailable, errDraining))
		return r, nil
	}
	if !s.admit(w, r, h) {
		return r, nil
	}
	return r, h.leave
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	if c := s.open(w, r); c != nil {
		defer s.unregister(c)
		c.serve()
	}
}

// open upgrades r and registers the connection for the drain; it returns
// nil when the connection is not to be served.
//
//go:noinline
func (s *Server) open(w http.ResponseWriter, r *http.Request) *Conn {
	c := s.accept(w, r)
	if c == nil {
		return nil
	}
	if s.obs != nil {
		s.observeOpened(r, c)
	}
	if !s.register(c) {
		c.fail(errlog.NewError(errlog.Canceled, errDraining), nil)
		c.finish()
		return nil
	}
	return c
}

// accept upgrades the request, or logs why not and returns nil. It is a
// function of its own so that its large frame (the transport's options)
// is off the stack while the connection is served: what stays there while
// an idle connection waits, plus the runtime's 800 B reserve, must be under
// a quarter of a grown stack for the GC to shrink it (see
// internal/bench/README.md).
func (s *Server) accept(w http.ResponseWriter, r *http.Request) *Conn {
	c := s.newConn(r)
	tap := newHijackTap(w, c)
	ws, err := tap.acceptAside(r, &websocket.AcceptOptions{
		Subprotocols: s.cfg.subprotocols,
		// The Origin was checked by the guards, with logging.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		if !tap.wrote {
			// The transport's answer carries its error text, which may
			// echo a header: the client gets the code table's text.
			code := errlog.Protocol
			if tap.refused >= http.StatusInternalServerError {
				code = errlog.Internal
			}
			h := w.Header()
			h.Del("Connection")
			h.Del("Upgrade")
			Reject(w, r, s.log, errlog.NewError(code, err))
			return nil
		}
		errlog.Log(r.Context(), s.log, "handshake failed", errlog.NewError(errlog.Internal, err),
			slog.String(errlog.KeyRemote, c.RemoteIP()),
			slog.Any(errlog.KeyUA, errlog.Untrusted(r.UserAgent())))
		observeRejected(r, errlog.Internal, 0, err)
		return nil
	}
	c.ws, c.nc = ws, tap.nc
	// The transport put an io.MultiReader of the HTTP server's buffered
	// bytes before the socket; the frameConn took those bytes already:
	// it reads the frameConn directly, when it reads a close handshake.
	tap.br.Reset(tap.nc)
	// The frameConn enforces the read limit; the transport reads only
	// control frames, and its limit is a backstop.
	ws.SetReadLimit(s.cfg.readLimit + 1)
	return c
}

// acceptAside runs the transport's Accept on a goroutine of its own and
// waits for it. Its frames are deep enough to grow the serving goroutine's
// stack past 4 KiB, and a stack under net/http's connection frame (1.1 KiB)
// never shrinks back below 8 KiB once grown (see internal/bench/README.md):
// run aside, the upgrade leaves a connection that only receives on a
// 4 KiB stack. A panic is raised again on the serving goroutine. The call's
// state lives in the tap, which the handshake allocates anyway.
func (t *hijackTap) acceptAside(r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, error) {
	t.r, t.opts = r, opts
	t.done.Add(1)
	go t.runAccept()
	t.done.Wait()
	if t.panicked != nil {
		panic(t.panicked)
	}
	return t.ws, t.err
}

func (t *hijackTap) runAccept() {
	defer t.done.Done()
	defer func() { t.panicked = recover() }()
	t.ws, t.err = websocket.Accept(t, t.r, t.opts)
}

func (s *Server) register(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) unregister(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting upgrades (new handshakes get 503), closes every
// open connection with 1001 and waits for their loops to end, and for the
// handlers behind [Server.Guard] as that method describes. When ctx ends
// first, the remaining connections are dropped without a close handshake
// and ctx's error is returned, at most a second later: a handler that
// ignores its canceled context ([Conn.Context] is canceled as soon as the
// connection ends) is not waited for.
//
// http.Server.Shutdown does not wait for hijacked connections, and a
// function given to http.Server.RegisterOnShutdown runs without being
// waited for either: a process that exits when http.Server.Shutdown
// returns exits in the middle of the drain. [Serve] runs both and waits;
// without it, wait for this method's return as well as the http.Server's.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	foreign := s.foreignConns()
	s.mu.Unlock()
	for _, f := range foreign {
		f.drain()
	}

	var closers sync.WaitGroup
	for _, c := range conns {
		closers.Go(func() { c.fail(errlog.NewError(errlog.Canceled, errDraining), nil) })
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		closers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// The transport cannot abort a close handshake it has started, so
	// stragglers are cut at the socket.
	s.mu.Lock()
	for c := range s.conns {
		_ = c.nc.Close()
	}
	foreign = s.foreignConns()
	s.mu.Unlock()
	for _, f := range foreign {
		f.cutSocket()
	}
	// Cut sockets end their loops at once; a handler that ignores its
	// canceled context keeps its goroutine, and Shutdown does not wait
	// for it past a short grace.
	t := time.NewTimer(shutdownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	return ctx.Err()
}

// shutdownGrace is how long Shutdown waits, once its context has ended and
// the sockets are cut, for the connections' goroutines to finish.
const shutdownGrace = time.Second

// Open returns the number of open connections.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// connID returns the id of the server's n-th connection.
func (s *Server) connID(n uint64) string {
	return s.idPrefix + strconv.FormatUint(n, 36)
}

// getBuf returns a pooled read buffer; its capacity grows up to the read
// limit + 1 as messages need it.
func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, min(4096, s.cfg.readLimit+1))
	return &b
}

func (s *Server) putBuf(b *[]byte) { s.bufs.Put(b) }

// hijackTap stands between the transport and the ResponseWriter during
// the upgrade. It hands the transport the socket wrapped in a [frameConn],
// and it holds back an error response the transport writes, whose body is
// the transport's error text: the caller answers with [Reject] instead.
//
// Given net/http's own ResponseWriter, it also writes the 101 response
// itself, on the hijacked socket: net/http keeps the headers it sent, and
// a copy it makes of them, for as long as ServeHTTP runs, which is the
// connection's life (about 0.8 KiB each). A ResponseWriter of middleware
// gets the 101 through WriteHeader, as it expects.
type hijackTap struct {
	http.ResponseWriter
	conn      *Conn
	nc        *frameConn
	br        *bufio.Reader // the transport's reader of nc
	refused   int           // the error status held back, or 0
	wrote     bool          // a status was passed on (the upgrade's 101)
	own       bool          // the response is net/http's: the tap writes the 101
	header    http.Header   // the transport's response headers, when own
	switching bool          // the 101 is to be written on the socket

	// The transport's Accept, run by acceptAside.
	r        *http.Request
	opts     *websocket.AcceptOptions
	ws       *websocket.Conn
	err      error
	panicked any
	done     sync.WaitGroup
}

func newHijackTap(w http.ResponseWriter, c *Conn) *hijackTap {
	return &hijackTap{ResponseWriter: w, conn: c, own: isNetHTTPResponse(w)}
}

// isNetHTTPResponse reports whether w is net/http's own ResponseWriter.
func isNetHTTPResponse(w http.ResponseWriter) bool {
	t := reflect.TypeOf(w)
	return t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "net/http" && t.Elem().Name() == "response"
}

// Header implements http.ResponseWriter.
func (t *hijackTap) Header() http.Header {
	if !t.own {
		return t.ResponseWriter.Header()
	}
	if t.header == nil {
		t.header = make(http.Header, 4)
	}
	return t.header
}

// WriteHeader implements http.ResponseWriter.
func (t *hijackTap) WriteHeader(status int) {
	if status >= http.StatusBadRequest {
		t.refused = status
		return
	}
	t.wrote = true
	if t.own && status == http.StatusSwitchingProtocols {
		t.switching = true
		return
	}
	t.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (t *hijackTap) Write(b []byte) (int, error) {
	if t.refused != 0 {
		return len(b), nil
	}
	return t.ResponseWriter.Write(b)
}

// Hijack implements http.Hijacker. Bytes the client sent right after its
// handshake may already sit in the HTTP server's buffer: they are read
// through the frameConn as well, so that no frame escapes its checks.
func (t *hijackTap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(t.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if t.switching {
		if err := t.writeSwitching(nc); err != nil {
			_ = nc.Close()
			return nil, nil, err
		}
	}
	c := t.conn
	t.nc = newFrameConn(nc, c.limiter, c.srv.cfg.maxFrames)
	t.nc.answer, t.nc.alive = c.writeControl, c.touch
	c.out.nc, c.out.raw, c.out.blocked = nc, t.nc.raw, c.armWriteTimer
	c.out.tryWrite = c.out.writeSocket
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		t.nc.buffered(b)
	}
	// The frameConn reads the messages and the connection's batchWriter
	// writes them: the transport reads and writes only control frames
	// through these. The HTTP server's 4 KiB buffers stay reachable from
	// its connection for as long as ServeHTTP runs, so they are swapped
	// for small ones in place, not merely passed over.
	*brw.Reader = *bufio.NewReaderSize(t.nc, 16)
	*brw.Writer = *bufio.NewWriterSize(&c.out, transportWriteBuffer)
	t.br = brw.Reader
	return t.nc, brw, nil
}

// transportWriteBuffer holds any control frame whole, so that the
// transport's frames reach the batchWriter in one write each.
const transportWriteBuffer = 2 + maxControlPayload + 1

// writeSwitching writes the 101 response with the transport's headers
// and those middleware set on the ResponseWriter, as net/http would
// (without its Date, which a 1xx response need not carry).
func (t *hijackTap) writeSwitching(nc net.Conn) error {
	h := t.header
	if outer := t.ResponseWriter.Header(); len(outer) > 0 {
		h = outer.Clone()
		maps.Copy(h, t.header)
	}
	b := readBufs.Get().(*[]byte)
	defer readBufs.Put(b)
	w := bytesWriter{(*b)[:0]}
	w.b = append(w.b, "HTTP/1.1 101 Switching Protocols\r\n"...)
	_ = h.Write(&w) // sanitized as net/http's own
	w.b = append(w.b, "\r\n"...)
	_, err := nc.Write(w.b)
	*b = w.b[:0]
	return err
}

// bytesWriter appends what is written to b.
type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error)       { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesWriter) WriteString(s string) (int, error) { w.b = append(w.b, s...); return len(s), nil }

// Unwrap lets http.ResponseController reach the original writer.
func (t *hijackTap) Unwrap() http.ResponseWriter { return t.ResponseWriter }
