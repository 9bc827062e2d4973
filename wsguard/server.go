package wsguard

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/wsguard/kit/errlog"
)

// Server is an http.Handler that guards the handshake, upgrades to
// WebSocket and runs each connection's message loop. Create it with [New].
type Server struct {
	cfg      config
	handler  Handler
	log      *slog.Logger
	chain    http.Handler
	idPrefix string
	nextID   atomic.Uint64
	bufs     sync.Pool

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	draining bool
	wg       sync.WaitGroup
}

var errDraining = errors.New("server is shutting down")

// New returns a Server that passes every message to h. With no options it
// applies all the defaults described in the package documentation. New
// panics on an invalid option (a malformed Origin pattern), as a
// misconfigured guard must not start serving.
func New(h Handler, opts ...Option) *Server {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		cfg:      cfg,
		handler:  h,
		log:      errlog.OrDefault(cfg.logger),
		idPrefix: newIDPrefix(),
		conns:    make(map[*Conn]struct{}),
	}
	s.chain = s.guards(http.HandlerFunc(s.upgrade))
	return s
}

// guards wraps next in the pre-upgrade guards, in the order the design
// gives: client IP, IP filter, handshake rate, connection caps, Origin, then
// the application's handshake middleware.
func (s *Server) guards(next http.Handler) http.Handler {
	gopt := WithGuardLogger(s.log)
	var mws []func(http.Handler) http.Handler
	if s.cfg.realIP != nil {
		mws = append(mws, s.cfg.realIP.Handler)
	}
	if s.cfg.ipFilter != nil {
		mws = append(mws, s.cfg.ipFilter.Handler)
	}
	mws = append(mws,
		NewHandshakeLimit(s.cfg.handshakeRate, s.cfg.handshakeBurst, gopt).Handler,
		NewConnLimit(s.cfg.maxConns, s.cfg.maxConnsPerIP, gopt).Handler,
	)
	if !s.cfg.anyOrigin {
		oc, err := NewOriginCheck(s.cfg.origins, gopt)
		if err != nil {
			panic("wsguard: " + err.Error())
		}
		mws = append(mws, oc.Handler)
	}
	mws = append(mws, s.cfg.handshake...)
	for i := len(mws) - 1; i >= 0; i-- {
		next = mws[i](next)
	}
	return next
}

func newIDPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// ServeHTTP runs the guards and, when they all pass, upgrades the request
// and serves the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		Reject(w, r, s.log, errlog.NewError(errlog.Unavailable, errDraining))
		return
	}
	s.chain.ServeHTTP(w, r)
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	c := s.newConn(r)
	tap := &hijackTap{ResponseWriter: w}
	ws, err := websocket.Accept(tap, r, &websocket.AcceptOptions{
		Subprotocols: s.cfg.subprotocols,
		// The Origin was checked by the guards, with logging.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
		OnPingReceived: func(context.Context, []byte) bool {
			c.touch()
			return true
		},
		OnPongReceived: func(context.Context, []byte) { c.touch() },
	})
	if err != nil {
		// Accept has written the HTTP error: not a valid WebSocket handshake.
		errlog.Log(r.Context(), s.log, "handshake rejected", errlog.NewError(errlog.Protocol, err),
			slog.String(errlog.KeyRemote, c.remote),
			slog.Any(errlog.KeyUA, errlog.Untrusted(r.UserAgent())))
		return
	}
	c.ws, c.nc = ws, tap.nc
	// The transport's limit is a backstop; the loop enforces the limit itself
	// so that the client sees this package's close reason.
	ws.SetReadLimit(s.cfg.readLimit + 1)

	if !s.register(c) {
		c.fail(errlog.NewError(errlog.Canceled, errDraining), nil)
		c.finish()
		return
	}
	defer s.unregister(c)
	c.serve()
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
// open connection with 1001 and waits for their loops to end. When ctx ends
// first, the remaining connections are dropped without a close handshake
// and ctx's error is returned. Wire it to http.Server.RegisterOnShutdown or
// call it before http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

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
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// Open returns the number of open connections.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) newConnID() string {
	return s.idPrefix + strconv.FormatUint(s.nextID.Add(1), 36)
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

// hijackTap records the socket the transport hijacks, so that Shutdown can
// drop a connection whose close handshake is stuck.
type hijackTap struct {
	http.ResponseWriter
	nc net.Conn
}

// Hijack implements http.Hijacker.
func (t *hijackTap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(t.ResponseWriter).Hijack()
	t.nc = nc
	return nc, brw, err
}

// Unwrap lets http.ResponseController reach the original writer.
func (t *hijackTap) Unwrap() http.ResponseWriter { return t.ResponseWriter }
