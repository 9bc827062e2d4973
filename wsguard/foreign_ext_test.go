package wsguard_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	gws "github.com/gorilla/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// gorillaEcho is a handler the Server does not run: it upgrades with
// gorilla and echoes until the peer leaves or, when watch is set, until
// its request context ends, then closes with 1001.
func gorillaEcho(watch bool) http.Handler {
	up := gws.Upgrader{Subprotocols: []string{"app.v1"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if watch {
			stop := context.AfterFunc(r.Context(), func() {
				_ = c.WriteControl(gws.CloseMessage,
					gws.FormatCloseMessage(gws.CloseGoingAway, "going away"), time.Now().Add(time.Second))
				_ = c.Close()
			})
			defer stop()
		}
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, b); err != nil {
				return
			}
		}
	})
}

type guarded struct {
	srv  *wsguard.Server
	own  string // the Server's path
	url  string // the foreign handler's path
	logs *wstest.Logs
}

func startGuarded(t *testing.T, h http.Handler, opts ...wsguard.Option) *guarded {
	t.Helper()
	logs := &wstest.Logs{}
	opts = append([]wsguard.Option{wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug))}, opts...)
	srv := wsguard.New(echo, opts...)
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	mux.Handle("/legacy", srv.Guard(h))
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	base := "ws" + strings.TrimPrefix(ts.URL, "http")
	return &guarded{srv: srv, own: base + "/ws", url: base + "/legacy", logs: logs}
}

func status(t *testing.T, url string) int {
	t.Helper()
	raw := wstest.DialRaw(t, url, nil)
	return raw.Response.StatusCode
}

func TestGuardSharesTheServersCounters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		first, then func(*guarded) string
	}{
		{"server then foreign", func(g *guarded) string { return g.own }, func(g *guarded) string { return g.url }},
		{"foreign then server", func(g *guarded) string { return g.url }, func(g *guarded) string { return g.own }},
		{"foreign then foreign", func(g *guarded) string { return g.url }, func(g *guarded) string { return g.url }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startGuarded(t, gorillaEcho(false), wsguard.WithMaxConns(10, 1))
			c := dial(t, tt.first(g), nil)
			if got := roundTrip(t, c, "hi"); !strings.HasSuffix(got, "hi") {
				t.Fatalf("echo %q", got)
			}
			if s := status(t, tt.then(g)); s != http.StatusTooManyRequests {
				t.Fatalf("second connection from the IP: %d, want 429", s)
			}
			c.Close(websocket.StatusNormalClosure, "")
			// The slot is released when the first handler returns.
			deadline := time.Now().Add(5 * time.Second)
			for status(t, tt.then(g)) != http.StatusSwitchingProtocols {
				if time.Now().After(deadline) {
					t.Fatal("the slot was not released when the connection ended")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestGuardRunsHandshakeMiddlewareAndReportsToTheObserver(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var kinds []string
	obs := wsguard.ObserverFunc(func(ctx context.Context, e wsguard.Event) {
		if e.Conn != nil || e.Request == nil {
			t.Errorf("%v: Conn %v, Request %v; want the request only", e.Kind, e.Conn, e.Request)
		}
		mu.Lock()
		kinds = append(kinds, e.Kind.String())
		mu.Unlock()
	})
	refuse := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Let-In") == "" {
				wsguard.Reject(w, r, nil, errlog.NewError(errlog.Unauthenticated, errors.New("no pass")))
				return
			}
			if wsguard.ObserverFrom(r.Context()) == nil {
				t.Error("the handler behind Guard has no observer in its context")
			}
			next.ServeHTTP(w, r)
		})
	}
	g := startGuarded(t, gorillaEcho(false), wsguard.WithObserver(obs), wsguard.WithHandshake(refuse))
	if s := status(t, g.url); s != http.StatusUnauthorized {
		t.Fatalf("without a pass: %d, want 401", s)
	}
	if lines := g.logs.Find(t, "handshake rejected"); len(lines) != 1 || lines[0]["code"] != "unauthenticated" {
		t.Fatalf("rejection lines in the server's log: %v", lines)
	}
	c := dial(t, g.url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Let-In": {"1"}}, Subprotocols: []string{"app.v1"}})
	if c.Subprotocol() != "app.v1" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	roundTrip(t, c, "hi")
	c.Close(websocket.StatusNormalClosure, "")
	g.logs.WaitFor(t, "guarded connection closed", 5*time.Second)
	mu.Lock()
	defer mu.Unlock()
	want := "handshake_rejected auth_failed handshake_accepted conn_opened conn_closed"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestShutdownDrainsGuardedConnections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		watch   bool    // the handler closes when its context ends
		wantErr error   // from Shutdown
		want    int     // the close status the client reads, or -1: the socket was cut
		logCode string  // in the closing line, "" for none
		timeout float64 // Shutdown's, in seconds
	}{
		{"handler closes with 1001", true, nil, int(websocket.StatusGoingAway), "", 5},
		{"handler ignores the drain", false, context.DeadlineExceeded, -1, "canceled", 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startGuarded(t, gorillaEcho(tt.watch))
			c := dial(t, g.url, nil)
			roundTrip(t, c, "hi")
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(tt.timeout*float64(time.Second)))
			defer cancel()
			if err := g.srv.Shutdown(ctx); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Shutdown = %v, want %v", err, tt.wantErr)
			}
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer rcancel()
			_, _, err := c.Read(rctx)
			if got := int(websocket.CloseStatus(err)); got != tt.want {
				t.Fatalf("client read %v (status %d), want %d", err, got, tt.want)
			}
			line := g.logs.Find(t, "guarded connection closed")
			if len(line) != 1 {
				t.Fatalf("closing lines: %v", line)
			}
			if got, _ := line[0]["code"].(string); got != tt.logCode {
				t.Fatalf("closing line code %q, want %q", got, tt.logCode)
			}
			if s := status(t, g.url); s != http.StatusServiceUnavailable {
				t.Fatalf("after Shutdown: %d, want 503", s)
			}
		})
	}
}

func TestGuardRefusesNil(t *testing.T) {
	t.Parallel()
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(error).Error(), "Guard(nil)") {
			t.Fatalf("panic %v", p)
		}
	}()
	wsguard.New(echo).Guard(nil)
}
