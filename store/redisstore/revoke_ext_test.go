package redisstore_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/redistest"
	"github.com/wsguard/kit/store/redisstore"
	"github.com/wsguard/kit/wsguard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

var echo = wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	return c.Send(ctx, m.Type, m.Data)
})

// instance is one wsguard server of a cluster sharing a Redis.
type instance struct {
	url      string
	store    *redisstore.Store
	revoker  *redisstore.Revoker
	sessions *auth.Sessions
	events   *recorder
}

// cluster starts n instances verifying HS256 tokens signed with key, each
// with its own client of srv, revocation checked every interval.
func cluster(t *testing.T, srv *redistest.Server, n int, key []byte, interval time.Duration, ropts []redisstore.UseOption, wopts ...func(*redisstore.Store) wsguard.Option) []*instance {
	t.Helper()
	out := make([]*instance, n)
	for i := range out {
		c := srv.Client()
		t.Cleanup(func() { c.Close() })
		ev := &recorder{}
		st := redisstore.New(c)
		rv := st.Revoker(ropts...)
		v, err := auth.NewVerifier(jwa.HS256(), key)
		if err != nil {
			t.Fatal(err)
		}
		sessions := auth.NewSessions(v, auth.WithRevoker(rv, interval))
		opts := append(sessions.Options(), wsguard.WithLogger(quiet), wsguard.WithObserver(ev))
		for _, w := range wopts {
			opts = append(opts, w(st))
		}
		ws := wsguard.New(echo, opts...)
		ts := httptest.NewServer(ws)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ws.Shutdown(ctx)
			ts.Close()
		})
		out[i] = &instance{url: "ws" + strings.TrimPrefix(ts.URL, "http"), store: st, revoker: rv, sessions: sessions, events: ev}
	}
	return out
}

func newKey(t *testing.T) []byte {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return key
}

func token(t *testing.T, key []byte, sub, jti string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign(jwa.HS256(), key, auth.Claims{Subject: sub, ID: jti, Expiry: time.Now().Add(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func dialToken(ctx context.Context, url, tok string) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
}

// TestRevokeSubjectAcrossInstances shows two servers sharing one Redis
// enforcing one revocation: a subject revoked through one closes its
// connections on both within a second, and neither admits it again.
func TestRevokeSubjectAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	key := newKey(t)
	// A long periodic check, so that only the announcement can close in time.
	insts := cluster(t, srv, 2, key, time.Hour, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, in := range insts {
		stop, err := in.revoker.Subscribe(ctx, func(sub string) { in.sessions.CloseSubject(sub) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	alice := token(t, key, "alice", "a1", time.Hour)
	bob := token(t, key, "bob", "b1", time.Hour)
	var conns []*websocket.Conn
	for _, in := range insts {
		c, _, err := dialToken(ctx, in.url, alice)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		conns = append(conns, c)
	}
	b, _, err := dialToken(ctx, insts[1].url, bob)
	if err != nil {
		t.Fatal(err)
	}
	defer b.CloseNow()

	start := time.Now()
	if err := insts[0].revoker.RevokeSubject(ctx, "alice", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, _, err := c.Read(rctx)
			if got := websocket.CloseStatus(err); got != errlog.CloseUnauthenticated {
				t.Errorf("instance %d: alice's connection: %v, want close %d within 1 s", i, err, errlog.CloseUnauthenticated)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > time.Second {
		t.Errorf("closed after %v", d)
	}
	for i, in := range insts {
		if _, resp, err := dialToken(ctx, in.url, alice); err == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("instance %d admitted a revoked subject: %v, %v", i, resp, err)
		}
	}
	if err := b.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := b.Read(ctx); err != nil || string(m) != "still here" {
		t.Errorf("bob: %q, %v", m, err)
	}

	if err := insts[1].revoker.RestoreSubject(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	c, _, err := dialToken(ctx, insts[0].url, alice)
	if err != nil {
		t.Fatalf("restored subject: %v", err)
	}
	c.CloseNow()
}

// TestRevokeTokenTTL checks that a revoked token is refused by every
// instance and that its key lives as long as the token.
func TestRevokeTokenTTL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	key := newKey(t)
	insts := cluster(t, srv, 2, key, 50*time.Millisecond, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok := token(t, key, "carol", "c1", time.Hour)
	other := token(t, key, "carol", "c2", time.Hour)
	c, _, err := dialToken(ctx, insts[1].url, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	until := time.Now().Add(time.Minute)
	if err := insts[0].revoker.RevokeToken(ctx, "c1", until); err != nil {
		t.Fatal(err)
	}
	// The open connection closes at its next periodic check.
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != errlog.CloseUnauthenticated {
		t.Errorf("open connection: %v", err)
	}
	for i, in := range insts {
		if _, resp, err := dialToken(ctx, in.url, tok); err == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("instance %d admitted a revoked token: %v, %v", i, resp, err)
		}
	}
	c2, _, err := dialToken(ctx, insts[0].url, other)
	if err != nil {
		t.Fatalf("another token of the subject: %v", err)
	}
	c2.CloseNow()

	rc := srv.Client()
	defer rc.Close()
	ttl, err := rc.PTTL(ctx, redisstore.DefaultPrefix+"revoked:jti:c1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("TTL %v, want about a minute", ttl)
	}
	if err := insts[0].revoker.RevokeToken(ctx, "c9", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.Exists(ctx, redisstore.DefaultPrefix+"revoked:jti:c9").Result(); n != 0 {
		t.Error("an expired token's revocation was stored")
	}
}

// TestRevokerRedisDown stops Redis mid-test: revocation fails closed by
// default (HTTP 503 at the handshake, 1013 for open connections) and, when
// configured to fail open, admits with a store error event.
func TestRevokerRedisDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       []redisstore.UseOption
		wantStatus int // of a handshake while Redis is down
		wantClose  websocket.StatusCode
	}{
		{"fail closed by default", nil, http.StatusServiceUnavailable, errlog.CloseTryAgainLater},
		{"fail open", []redisstore.UseOption{redisstore.WithFailMode(redisstore.FailOpen)}, http.StatusSwitchingProtocols, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			key := newKey(t)
			in := cluster(t, srv, 1, key, 100*time.Millisecond, tt.opts)[0]
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tok := token(t, key, "dave", "d1", time.Hour)
			c, _, err := dialToken(ctx, in.url, tok)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()

			srv.Stop()
			c2, resp, err := dialToken(ctx, in.url, tok)
			if resp == nil || resp.StatusCode != tt.wantStatus {
				t.Errorf("handshake with Redis down: %v, %v; want status %d", resp, err, tt.wantStatus)
			}
			if c2 != nil {
				c2.CloseNow()
			}
			if tt.wantClose > 0 {
				_, _, err = c.Read(ctx)
				if got := websocket.CloseStatus(err); got != tt.wantClose {
					t.Errorf("open connection: %v, want close %d", err, tt.wantClose)
				}
			} else {
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				_, _, err = c.Read(rctx)
				rcancel()
				if websocket.CloseStatus(err) != -1 {
					t.Errorf("open connection closed: %v", err)
				}
			}
			if got := in.events.count(wsguard.EventStoreError, redisstore.UseRevocation); got == 0 {
				t.Error("no store error event")
			}
		})
	}
}

// recorder counts events.
type recorder struct {
	mu     sync.Mutex
	events []wsguard.Event
}

func (r *recorder) Observe(_ context.Context, e wsguard.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) count(k wsguard.EventKind, reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == k && e.Reason == reason {
			n++
		}
	}
	return n
}
