package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// secret is a 32-byte HS256 key, the least NewVerifier accepts.
var secret = []byte("test-secret-of-exactly-32-bytes!")

func hsVerifier(t testing.TB, opts ...auth.VerifierOption) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(jwa.HS256(), secret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mint signs c with secret under HS256.
func mint(t testing.TB, c auth.Claims) auth.Token {
	t.Helper()
	tok, err := auth.Sign(jwa.HS256(), secret, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// valid returns claims for sub that are valid for ttl from now.
func valid(sub string, ttl time.Duration) auth.Claims {
	now := time.Now()
	return auth.Claims{Subject: sub, Expiry: now.Add(ttl), IssuedAt: now, ID: sub + "-" + now.Format("150405.000000000")}
}

// handmade builds a compact token from a JSON header and payload and a raw
// signature, for the tokens Sign refuses to make.
func handmade(header, payload, sig string) auth.Token {
	enc := base64.RawURLEncoding
	return auth.Token(enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString([]byte(sig)))
}

// signed returns a token of the given header and payload, as written,
// signed with secret under HS256: for claims sets that Sign cannot make.
func signed(header, payload string) auth.Token {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(in))
	return auth.Token(in + "." + enc.EncodeToString(mac.Sum(nil)))
}

// logTo returns a debug-level JSON logger writing to l.
func logTo(l *wstest.Logs) *slog.Logger { return errlog.NewLogger(l, slog.LevelDebug) }

// echo answers text M with "Server received: M".
var echo = wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	return c.Send(ctx, m.Type, append([]byte("Server received: "), m.Data...))
})

// greet is the OnAuthenticated hook of the tests.
func greet(ctx context.Context, c *wsguard.Conn, _ *auth.Principal) error {
	return c.SendText(ctx, "Authenticated!")
}

type harness struct {
	url      string
	srv      *wsguard.Server
	sessions *auth.Sessions
	logs     *wstest.Logs
}

// newServer returns a wsguard server behind Sessions, echoing, greeting
// on authentication, offering the subprotocol wsguard.v1, and its logs.
func newServer(v *auth.Verifier, aopts []auth.Option, wopts ...wsguard.Option) (*wsguard.Server, *auth.Sessions, *wstest.Logs) {
	logs := &wstest.Logs{}
	aopts = append([]auth.Option{auth.OnAuthenticated(greet)}, aopts...)
	sessions := auth.NewSessions(v, aopts...)
	opts := append(sessions.Options(), wsguard.WithLogger(logTo(logs)), wsguard.WithSubprotocols("wsguard.v1"))
	return wsguard.New(echo, append(opts, wopts...)...), sessions, logs
}

// start serves newServer over httptest on real time.
func start(t *testing.T, v *auth.Verifier, aopts []auth.Option, wopts ...wsguard.Option) *harness {
	t.Helper()
	srv, sessions, logs := newServer(v, aopts, wopts...)
	return &harness{url: serve(t, srv), srv: srv, sessions: sessions, logs: logs}
}

// serve serves srv over httptest until the test ends and returns its
// ws:// URL.
func serve(t *testing.T, srv *wsguard.Server) string {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

func dial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func bearer(tok auth.Token) *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + string(tok)}}}
}

// read reads one text message, or fails.
func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func write(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// closeOf reads until the connection ends and returns the server's close
// status and reason; messages read meanwhile are returned too.
func closeOf(t *testing.T, c *websocket.Conn, within time.Duration) (websocket.StatusCode, string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []string
	for {
		_, b, err := c.Read(ctx)
		if err == nil {
			got = append(got, string(b))
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v (messages %q)", err, got)
		}
		return ce.Code, ce.Reason, got
	}
}

// pipeNet is an in-memory network for tests in a synctest bubble, where
// real sockets would not let the fake clock advance.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeNet) Addr() net.Addr { return loopback }

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}

func (p *pipeNet) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- tcpConn{server}:
		return tcpConn{client}, nil
	case <-p.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tcpConn gives a pipe the addresses of a loopback socket, so that the
// guards see a client IP.
type tcpConn struct{ net.Conn }

func (tcpConn) RemoteAddr() net.Addr { return loopback }
func (tcpConn) LocalAddr() net.Addr  { return loopback }

// bubble serves newServer over a pipeNet inside the current synctest
// bubble, with keepalive off so that the fake clock runs only to the
// timers under test. dial connects a client; everything is torn down
// when the test ends.
type bubble struct {
	srv      *wsguard.Server
	sessions *auth.Sessions
	logs     *wstest.Logs
	client   *http.Client
}

func startBubble(t *testing.T, v *auth.Verifier, aopts []auth.Option, wopts ...wsguard.Option) *bubble {
	t.Helper()
	wopts = append([]wsguard.Option{wsguard.WithPingInterval(0), wsguard.WithIdleTimeout(0)}, wopts...)
	srv, sessions, logs := newServer(v, aopts, wopts...)
	pn := newPipeNet()
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(pn)
	}()
	tr := &http.Transport{DialContext: pn.DialContext}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		_ = hs.Close()
		<-served
		tr.CloseIdleConnections()
	})
	return &bubble{srv: srv, sessions: sessions, logs: logs, client: &http.Client{Transport: tr}}
}

func (b *bubble) dial(t *testing.T, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	if opts == nil {
		opts = &websocket.DialOptions{}
	}
	opts.HTTPClient = b.client
	c, resp, err := websocket.Dial(context.Background(), "ws://127.0.0.1/", opts)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}
