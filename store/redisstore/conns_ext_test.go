package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/redistest"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/store/redisstore"
	"github.com/wsguard/kit/wsguard"
)

// TestSubjectScope puts the caps per IP and per subject on one Store: a
// connection counts once in each total, and a subject named like an
// address is not that address.
func TestSubjectScope(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	urls, _ := servers(t, srv, 1, func(st *redisstore.Store) []wsguard.Option {
		lim := wsguard.NewSubjectConnLimit(1, st.SubjectConns())
		return []wsguard.Option{
			wsguard.WithConnStore(st.Conns()),
			wsguard.WithMaxConns(3, 100),
			wsguard.WithHandshake(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r.WithContext(wsguard.WithSubject(r.Context(), r.Header.Get("X-Sub"))))
				})
			}, lim.Handler),
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dial := func(sub string) int {
		c, resp, err := websocket.Dial(ctx, urls[0], &websocket.DialOptions{HTTPHeader: http.Header{"X-Sub": {sub}}})
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return resp.StatusCode
		}
		t.Cleanup(func() { c.CloseNow() })
		return http.StatusSwitchingProtocols
	}
	for _, step := range []struct {
		sub  string
		want int
	}{
		{"alice", http.StatusSwitchingProtocols},
		{"alice", http.StatusTooManyRequests}, // the subject's cap
		{"bob", http.StatusSwitchingProtocols},
		{"127.0.0.1", http.StatusSwitchingProtocols}, // not the client address's count
		{"carol", http.StatusServiceUnavailable},     // the total of 3 connections
	} {
		if got := dial(step.sub); got != step.want {
			t.Errorf("%s: %d, want %d", step.sub, got, step.want)
		}
	}
	c := srv.Client()
	defer c.Close()
	for key, want := range map[string]int64{
		"wsguard:{conns}:total":               3,
		"wsguard:{conns}:client:127.0.0.1":    3,
		"wsguard:{subjects}:total":            3,
		"wsguard:{subjects}:client:alice":     1,
		"wsguard:{subjects}:client:127.0.0.1": 1,
	} {
		if n, err := c.ZCard(ctx, key).Result(); err != nil || n != want {
			t.Errorf("ZCARD %s = %d, %v; want %d", key, n, err, want)
		}
	}
}

// TestStoreFailureLines checks that each line about an unreachable Redis
// says what was done: a check admitted or refused, a lease left to lapse,
// a refresh missed.
func TestStoreFailureLines(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	logs := new(wstest.Logs)
	c := srv.Client()
	defer c.Close()
	st := redisstore.New(c)
	ttl := 300 * time.Millisecond
	conns := st.Conns(redisstore.WithLeaseTTL(ttl))
	// The store logs through the server whose request it serves.
	var ctx context.Context
	wsguard.Instrument(errlog.NewLogger(logs, slog.LevelDebug), nil)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx = r.Context()
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	release, err := conns.AcquireConn(ctx, "10.0.0.1", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	const (
		admitted  = "admitted (fail open)"
		refused   = "refused (fail closed)"
		notFreed  = "lease not released: it counts until its TTL runs out"
		notRenewd = "leases not refreshed: they lapse after their TTL unless a later refresh succeeds"
	)
	actions := func() map[[2]string]int {
		seen := map[[2]string]int{}
		for _, l := range logs.Find(t, "redis store unreachable") {
			use, _ := l["use"].(string)
			action, _ := l["action"].(string)
			seen[[2]string{use, action}]++
		}
		return seen
	}
	for deadline := time.Now().Add(5 * time.Second); actions()[[2]string{redisstore.UseConnCap, notRenewd}] == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no line for a missed refresh:\n%s", logs.String())
		}
	}
	release()
	if _, err := conns.AcquireConn(ctx, "10.0.0.2", 10, 10); err != nil {
		t.Errorf("failing open: %v", err)
	}
	if _, err := st.SubjectConns(redisstore.WithFailMode(redisstore.FailClosed)).AcquireConn(ctx, "alice", 10, 1); err == nil ||
		errors.Is(err, wsguard.ErrClientCap) {
		t.Errorf("failing closed: %v", err)
	}
	time.Sleep(ttl / 2) // let the last refresh timer stop

	seen := actions()
	for _, want := range []struct {
		use, action string
		n           int // 0: at least one
	}{
		{redisstore.UseConnCap, notFreed, 1},
		{redisstore.UseConnCap, admitted, 1},
		{redisstore.UseSubjectConns, refused, 1},
		{redisstore.UseConnCap, notRenewd, 0},
	} {
		got := seen[[2]string{want.use, want.action}]
		if got == 0 || want.n > 0 && got != want.n {
			t.Errorf("%d lines %s %q, want %d", got, want.use, want.action, max(want.n, 1))
		}
		delete(seen, [2]string{want.use, want.action})
	}
	if len(seen) > 0 {
		t.Errorf("other lines: %v\n%s", seen, logs.String())
	}
}
