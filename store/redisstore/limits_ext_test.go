package redisstore_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/redistest"
	"github.com/wsguard/kit/store/redisstore"
	"github.com/wsguard/kit/wsguard"
)

// servers starts n wsguard servers, each with its own client of srv and
// the shared stores opts selects.
func servers(t *testing.T, srv *redistest.Server, n int, opts func(st *redisstore.Store) []wsguard.Option) ([]string, []*recorder) {
	t.Helper()
	urls := make([]string, n)
	recs := make([]*recorder, n)
	for i := range n {
		c := srv.Client()
		t.Cleanup(func() { c.Close() })
		rec := &recorder{}
		st := redisstore.New(c)
		ws := wsguard.New(echo, append(opts(st), wsguard.WithLogger(quiet), wsguard.WithObserver(rec))...)
		ts := httptest.NewServer(ws)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ws.Shutdown(ctx)
			ts.Close()
		})
		urls[i], recs[i] = "ws"+strings.TrimPrefix(ts.URL, "http"), rec
	}
	return urls, recs
}

func dialStatus(t *testing.T, url string) (*websocket.Conn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, http.StatusSwitchingProtocols
}

// TestSharedConnCap shows two servers sharing one Redis enforcing one
// per-client cap.
func TestSharedConnCap(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	urls, recs := servers(t, srv, 2, func(st *redisstore.Store) []wsguard.Option {
		return []wsguard.Option{wsguard.WithConnStore(st.Conns()), wsguard.WithMaxConns(100, 2)}
	})
	a, st := dialStatus(t, urls[0])
	if st != http.StatusSwitchingProtocols {
		t.Fatalf("first: %d", st)
	}
	if _, st := dialStatus(t, urls[1]); st != http.StatusSwitchingProtocols {
		t.Fatalf("second: %d", st)
	}
	for i, u := range urls {
		if _, st := dialStatus(t, u); st != http.StatusTooManyRequests {
			t.Errorf("third on instance %d: %d, want 429", i, st)
		}
	}
	if recs[0].count(wsguard.EventLimited, wsguard.LimitConnCap) != 1 {
		t.Error("no limited event")
	}
	a.Close(websocket.StatusNormalClosure, "")
	// The slot is freed when the server ends the connection.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, st := dialStatus(t, urls[1]); st == http.StatusSwitchingProtocols {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not freed after a close")
		}
	}
}

// TestConnLeases checks the total cap and that the leases of an instance
// that stops refreshing them (a crash) expire, while those of a live one
// do not.
func TestConnLeases(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	ttl := 300 * time.Millisecond
	crashed := srv.Client()
	live := srv.Client()
	defer live.Close()
	a := redisstore.New(crashed).Conns(redisstore.WithLeaseTTL(ttl))
	b := redisstore.New(live).Conns(redisstore.WithLeaseTTL(ttl))

	relA, err := a.AcquireConn(ctx, "10.0.0.1", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	relB, err := b.AcquireConn(ctx, "10.0.0.2", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireConn(ctx, "10.0.0.3", 2, 1); !errors.Is(err, wsguard.ErrTotalCap) {
		t.Errorf("over the total: %v", err)
	}
	time.Sleep(3 * ttl) // refreshed meanwhile
	if _, err := b.AcquireConn(ctx, "10.0.0.1", 2, 1); !errors.Is(err, wsguard.ErrClientCap) {
		t.Errorf("a's refreshed lease: %v", err)
	}
	crashed.Close() // a can no longer refresh
	deadline := time.Now().Add(5 * time.Second)
	for {
		rel, err := b.AcquireConn(ctx, "10.0.0.1", 2, 1)
		if err == nil {
			rel()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crashed instance's lease did not expire: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	relA()
	relB()
	relB()
	if b.Open() != 0 || a.Open() != 0 {
		t.Errorf("leases held: %d, %d", a.Open(), b.Open())
	}
	time.Sleep(ttl / 2) // let the last refresh timers stop
}

// TestSharedHandshakeRate shows two servers sharing one Redis enforcing
// one handshake rate: the burst is spent across both.
func TestSharedHandshakeRate(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	urls, _ := servers(t, srv, 2, func(st *redisstore.Store) []wsguard.Option {
		return []wsguard.Option{wsguard.WithHandshakeStore(st.Handshakes()), wsguard.WithHandshakeRate(0.5, 3)}
	})
	for i, u := range []string{urls[0], urls[1], urls[0]} {
		if c, st := dialStatus(t, u); st != http.StatusSwitchingProtocols {
			t.Fatalf("handshake %d: %d", i, st)
		} else {
			c.CloseNow()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, urls[1], nil)
	if err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth handshake: %v, %v; want 429", resp, err)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
}

// TestLimitsRedisDown stops Redis mid-test: the shared limits fail open
// by default, with a store error event, and refuse with 503 when set to
// fail closed.
func TestLimitsRedisDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode redisstore.FailMode
		use  string
		want int
	}{
		{"caps fail open", 0, redisstore.UseConnCap, http.StatusSwitchingProtocols},
		{"caps fail closed", redisstore.FailClosed, redisstore.UseConnCap, http.StatusServiceUnavailable},
		{"rate fails open", 0, redisstore.UseHandshakeRate, http.StatusSwitchingProtocols},
		{"rate fails closed", redisstore.FailClosed, redisstore.UseHandshakeRate, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			var uopts []redisstore.UseOption
			if tt.mode != 0 {
				uopts = append(uopts, redisstore.WithFailMode(tt.mode))
			}
			urls, recs := servers(t, srv, 1, func(st *redisstore.Store) []wsguard.Option {
				if tt.use == redisstore.UseConnCap {
					return []wsguard.Option{wsguard.WithConnStore(st.Conns(uopts...))}
				}
				return []wsguard.Option{wsguard.WithHandshakeStore(st.Handshakes(uopts...))}
			})
			if c, st := dialStatus(t, urls[0]); st != http.StatusSwitchingProtocols {
				t.Fatalf("with Redis up: %d", st)
			} else {
				c.CloseNow()
			}
			srv.Stop()
			if c, st := dialStatus(t, urls[0]); st != tt.want {
				t.Errorf("with Redis down: %d, want %d", st, tt.want)
			} else if c != nil {
				c.CloseNow()
			}
			if recs[0].count(wsguard.EventStoreError, tt.use) == 0 {
				t.Error("no store error event")
			}
		})
	}
}

// TestSharedSubjectCap shows two servers sharing one Redis enforcing one
// cap per subject, in a key space of its own.
func TestSharedSubjectCap(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	urls, _ := servers(t, srv, 2, func(*redisstore.Store) []wsguard.Option {
		c := srv.Client()
		t.Cleanup(func() { c.Close() })
		subs := redisstore.New(c, redisstore.WithPrefix("wsguard:subjects:")).Conns()
		lim := wsguard.NewSubjectConnLimit(1, subs)
		return []wsguard.Option{wsguard.WithHandshake(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(wsguard.WithSubject(r.Context(), r.Header.Get("X-Sub"))))
			})
		}, lim.Handler)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dial := func(url, sub string) int {
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Sub": {sub}}})
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return resp.StatusCode
		}
		t.Cleanup(func() { c.CloseNow() })
		return http.StatusSwitchingProtocols
	}
	if st := dial(urls[0], "alice"); st != http.StatusSwitchingProtocols {
		t.Fatalf("alice on 0: %d", st)
	}
	if st := dial(urls[1], "alice"); st != http.StatusTooManyRequests {
		t.Errorf("alice on 1: %d, want 429", st)
	}
	if st := dial(urls[1], "bob"); st != http.StatusSwitchingProtocols {
		t.Errorf("bob on 1: %d", st)
	}
}

// TestLeaseReleaseFailureGoesToTheServer: a lease released after its
// request, with Redis gone, is reported to the observer of the server
// that took it, which is the only observer there is.
func TestLeaseReleaseFailureGoesToTheServer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	urls, recs := servers(t, srv, 1, func(st *redisstore.Store) []wsguard.Option {
		return []wsguard.Option{wsguard.WithConnStore(st.Conns())}
	})
	c, st := dialStatus(t, urls[0])
	if st != http.StatusSwitchingProtocols {
		t.Fatalf("dial: %d", st)
	}
	if n := recs[0].count(wsguard.EventStoreError, redisstore.UseConnCap); n != 0 {
		t.Fatalf("%d store errors with Redis up", n)
	}
	srv.Stop()
	c.CloseNow()
	for deadline := time.Now().Add(5 * time.Second); recs[0].count(wsguard.EventStoreError, redisstore.UseConnCap) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the failed release was not reported to the server's observer")
		}
	}
}
