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
	obs      Observer // nil: no event is built
	idPrefix string
	nextID   atomic.Uint64
	bufs     sync.Pool

	// The built-in pre-upgrade guards, run in line by admit, and the
	// application's handshake middleware around upgrade (nil when none).
	handshakes *HandshakeLimit
	connLimit  *ConnLimit
	origin     *OriginCheck // nil with InsecureSkipOriginCheck
	next       http.Handler

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
		handler:  NewChain(cfg.middleware...).Then(h),
		log:      errlog.OrDefault(cfg.logger),
		obs:      cfg.observer,
		idPrefix: newIDPrefix(),
		conns:    make(map[*Conn]struct{}),
	}
	s.initGuards()
	return s
}

// initGuards builds the pre-upgrade guards. They act as their Handler
// methods would, chained in the order the design gives (client IP, IP
// filter, handshake rate, connection caps, Origin, then the application's
// handshake middleware), but the built-in ones run in line in admit: a
// chained middleware's frame would stay on the serving goroutine's stack
// for the connection's whole life (see [Server.accept]).
func (s *Server) initGuards() {
	gopt := WithGuardLogger(s.log)
	s.handshakes = NewHandshakeLimit(s.cfg.handshakeRate, s.cfg.handshakeBurst, gopt)
	s.connLimit = NewConnLimit(s.cfg.maxConns, s.cfg.maxConnsPerIP, gopt)
	if !s.cfg.anyOrigin {
		oc, err := NewOriginCheck(s.cfg.origins, gopt)
		if err != nil {
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

// admit runs the built-in guards on r, as their Handler methods do: on a
// refusal it answers with [Reject] and returns ok false; otherwise it
// returns r (carrying the resolved client IP) and the connection slot's
// release.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (_ *http.Request, release func(), ok bool) {
	if p := s.cfg.realIP; p != nil {
		ip, err := p.IP(r)
		if err != nil {
			Reject(w, r, p.cfg.logger, err)
			return r, nil, false
		}
		r = r.WithContext(WithClientIP(r.Context(), ip))
	}
	if f := s.cfg.ipFilter; f != nil {
		if err := f.Check(r); err != nil {
			Reject(w, r, f.cfg.logger, err)
			return r, nil, false
		}
	}
	if err := s.handshakes.Check(r); err != nil {
		s.observeLimit(r, LimitHandshakeRate, err)
		Reject(w, r, s.handshakes.cfg.logger, err)
		return r, nil, false
	}
	if s.cfg.rateStore != nil {
		if err := s.checkSharedRate(r); err != nil {
			s.observeLimit(r, LimitHandshakeRate, err)
			Reject(w, r, s.handshakes.cfg.logger, err)
			return r, nil, false
		}
	}
	release, err := s.connLimit.Acquire(r)
	if err != nil {
		s.observeLimit(r, LimitConnCap, err)
		Reject(w, r, s.connLimit.cfg.logger, err)
		return r, nil, false
	}
	if s.cfg.connStore != nil {
		shared, err := s.acquireShared(r)
		if err != nil {
			release()
			s.observeLimit(r, LimitConnCap, err)
			Reject(w, r, s.connLimit.cfg.logger, err)
			return r, nil, false
		}
		local := release
		release = func() { shared(); local() }
	}
	if s.origin != nil {
		if err := s.origin.Check(r); err != nil {
			Reject(w, r, s.origin.cfg.logger, err)
			release()
			return r, nil, false
		}
	}
	return r, release, true
}

func newIDPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// ServeHTTP runs the guards and, when they all pass, upgrades the request
// and serves the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.obs != nil {
		r = withObserver(r, s.obs)
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		Reject(w, r, s.log, errlog.NewError(errlog.Unavailable, errDraining))
		return
	}
	r, release, ok := s.admit(w, r)
	if !ok {
		return
	}
	defer release()
	if s.next != nil {
		s.next.ServeHTTP(w, r)
		return
	}
	s.upgrade(w, r)
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	c := s.accept(w, r)
	if c == nil {
		return
	}
	if s.obs != nil {
		s.observeOpened(r, c)
	}
	if !s.register(c) {
		c.fail(errlog.NewError(errlog.Canceled, errDraining), nil)
		c.finish()
		return
	}
	defer s.unregister(c)
	c.serve()
}

// accept upgrades the request, or logs why not and returns nil. It is a
// function of its own so that its large frame (the transport's options)
// is off the stack while the connection is served: what stays there while
// an idle connection waits must be under a quarter of a grown 16 KiB stack
// for the GC to shrink it back to 8 KiB (see internal/bench/README.md).
func (s *Server) accept(w http.ResponseWriter, r *http.Request) *Conn {
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
		observeRejected(r, errlog.Protocol, errlog.Protocol.HTTPStatus(), err)
		return nil
	}
	c.ws, c.nc = ws, tap.nc
	// The transport's limit is a backstop; the loop enforces the limit itself
	// so that the client sees this package's close reason.
	ws.SetReadLimit(s.cfg.readLimit + 1)
	return c
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
// and ctx's error is returned.
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
