package wsguard_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// TestGuardsInstalledOnAServerUseItsLoggerAndObserver: whatever the
// guard and however it is installed, its refusal is logged once to the
// server's logger and reported to the server's observer.
func TestGuardsInstalledOnAServerUseItsLoggerAndObserver(t *testing.T) {
	t.Parallel()
	realIP, err := wsguard.NewRealIP([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	deny, err := wsguard.NewIPFilter(nil, []string{"198.51.100.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	clock := newGuardClock()
	tests := []struct {
		name     string
		opts     []wsguard.Option
		xff      string
		requests int
		status   int
		limit    string // the EventLimited reason, "" when none
	}{
		{"WithRealIP", []wsguard.Option{wsguard.WithRealIP(realIP)}, "not-an-ip", 1, http.StatusBadRequest, ""},
		{"WithIPFilter", []wsguard.Option{wsguard.WithIPFilter(deny)}, "", 1, http.StatusForbidden, ""},
		{"an IPFilter in WithHandshake", []wsguard.Option{wsguard.WithHandshake(deny.Handler)}, "", 1, http.StatusForbidden, ""},
		{"a HandshakeLimit in WithHandshake", []wsguard.Option{wsguard.WithHandshake(
			wsguard.NewHandshakeLimit(1, 1, wsguard.WithGuardClock(clock.Now)).Handler)}, "", 2, http.StatusTooManyRequests, wsguard.LimitHandshakeRate},
		{"a ConnLimit in WithHandshake", []wsguard.Option{wsguard.WithHandshake(func(h http.Handler) http.Handler {
			l := wsguard.NewConnLimit(1, 1)
			if _, err := l.Acquire(guardRequest("198.51.100.7:1")); err != nil {
				t.Fatal(err)
			}
			return l.Handler(h)
		})}, "", 1, http.StatusTooManyRequests, wsguard.LimitConnCap},
		{"the built-in handshake rate", []wsguard.Option{wsguard.WithHandshakeRate(0.001, 1)}, "", 2, http.StatusTooManyRequests, wsguard.LimitHandshakeRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logger := newGuardLog()
			rec := &recorder{}
			srv := wsguard.New(echo, append([]wsguard.Option{wsguard.WithLogger(logger), wsguard.WithObserver(rec)}, tt.opts...)...)
			var w *httptest.ResponseRecorder
			for range tt.requests {
				r := guardRequest("198.51.100.7:1")
				if tt.xff != "" {
					r.RemoteAddr = "10.0.0.1:1"
					r.Header.Set("X-Forwarded-For", tt.xff)
				}
				w = httptest.NewRecorder()
				srv.ServeHTTP(w, r)
			}
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			// A request the guards let through fails the upgrade (it is
			// not a real handshake): only the guard's refusal counts.
			var lines []map[string]any
			for _, l := range log.lines(t) {
				if l[errlog.KeyStatus] == float64(tt.status) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || lines[0]["msg"] != "handshake rejected" {
				t.Fatalf("server log: %v", log)
			}
			var refusals []wsguard.Event
			for _, e := range rec.find(wsguard.EventHandshakeRejected) {
				if e.Status == tt.status {
					refusals = append(refusals, e)
				}
			}
			if len(refusals) != 1 {
				t.Fatalf("refusals observed: %v", rec.find(wsguard.EventHandshakeRejected))
			}
			limited := rec.find(wsguard.EventLimited)
			switch {
			case tt.limit == "" && len(limited) != 0:
				t.Fatalf("limit events %v, want none", limited)
			case tt.limit != "" && (len(limited) != 1 || limited[0].Reason != tt.limit):
				t.Fatalf("limit events %v, want one %q", limited, tt.limit)
			}
		})
	}
}

// TestHandComposedGuardsUseInstrument: guards composed by hand in front of
// any handler log and report through Instrument, as they would on a
// Server, refusing the same way.
func TestHandComposedGuardsUseInstrument(t *testing.T) {
	t.Parallel()
	log, logger := newGuardLog()
	rec := &recorder{}
	clock := newGuardClock()
	h := wsguard.Instrument(logger, rec)(
		wsguard.NewHandshakeLimit(1, 1, wsguard.WithGuardClock(clock.Now)).Handler(guardOK))
	for i, want := range []int{http.StatusNoContent, http.StatusTooManyRequests} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, guardRequest("198.51.100.7:1"))
		if w.Code != want {
			t.Fatalf("request %d: status %d, want %d", i, w.Code, want)
		}
	}
	if line := log.oneLine(t); line[errlog.KeyCode] != "resource_exhausted" {
		t.Fatalf("log %v", line)
	}
	if got := rec.kinds(); len(got) != 2 || got[0] != wsguard.EventLimited || got[1] != wsguard.EventHandshakeRejected {
		t.Fatalf("events %v, want limited then handshake_rejected", got)
	}
}

// TestConnectionsCarryTheServersLogger: the connection's context hands
// the server's logger and observer to message middleware and stores.
func TestConnectionsCarryTheServersLogger(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	type seen struct {
		log *slog.Logger
		obs wsguard.Observer
	}
	got := make(chan seen, 1)
	ts := start(t, wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		got <- seen{wsguard.LoggerFrom(c.Context()), wsguard.ObserverFrom(ctx)}
		return echo(ctx, c, m)
	}), wsguard.WithObserver(rec))
	c := dial(t, ts.URL, nil)
	roundTrip(t, c, "hi")
	s := <-got
	if s.log == slog.Default() || s.log == nil {
		t.Fatal("LoggerFrom(conn) is not the server's logger")
	}
	s.log.Info("from middleware")
	if ts.Logs.WaitFor(t, "from middleware", time.Second) == nil {
		t.Fatal("the line is not in the server's log")
	}
	if s.obs != wsguard.Observer(rec) {
		t.Fatalf("ObserverFrom(ctx) = %v, want the server's", s.obs)
	}
	if wsguard.LoggerFrom(context.Background()) != slog.Default() || wsguard.ObserverFrom(context.Background()) != nil {
		t.Fatal("outside a server: want slog.Default() and no observer")
	}
}
