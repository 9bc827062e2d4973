package wsguard_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/wsguard/kit/wsguard"
)

// nopWriter is a ResponseWriter that keeps nothing, so that a count of
// allocations is the handler's own.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w nopWriter) WriteHeader(int)             {}

// TestHandshakeAllocations holds what a Server allocates for a handshake
// before it is upgraded, and what WithSubject allocates: a handshake runs
// once per connection, thousands of times a second in a reconnect storm.
// The built-in guards cost one context for the request (the server's
// scope, the client IP behind RealIP and the connection slot together),
// the request copy that carries it, and the slot's release; the subject
// one context. AllocsPerRun cannot run in parallel.
func TestHandshakeAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector changes what allocates")
	}
	proxies, err := wsguard.NewRealIP([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	var sawIP netip.Addr
	// The guards' work alone: the handshake middleware answers instead
	// of passing on to the upgrade.
	stop := wsguard.WithHandshake(func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawIP = wsguard.ClientIP(r)
			w.WriteHeader(http.StatusNoContent)
		})
	})
	echo := wsguard.HandlerFunc(func(context.Context, *wsguard.Conn, *wsguard.Message) error { return nil })
	rate := wsguard.WithHandshakeRate(1e6, 1e6)
	direct := wsguard.New(echo, rate, stop)
	proxied := wsguard.New(echo, rate, stop, wsguard.WithRealIP(proxies))
	fromClient := guardRequest("192.0.2.1:1234")
	fromProxy := guardRequest("10.0.0.7:1234")
	fromProxy.Header.Set("X-Forwarded-For", "198.51.100.9")
	w := nopWriter{http.Header{}}
	ctx := context.Background()
	sub := string(append([]byte(nil), "alice"...)) // as a token's subject: not a constant
	tests := []struct {
		name   string
		max    float64
		run    func()
		wantIP string
	}{
		{"guards", 3, func() { direct.ServeHTTP(w, fromClient) }, "192.0.2.1"},
		{"guards behind RealIP", 3, func() { proxied.ServeHTTP(w, fromProxy) }, "198.51.100.9"},
		{"WithSubject", 1, func() { wsguard.WithSubject(ctx, sub) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sawIP = netip.Addr{}
			if n := testing.AllocsPerRun(100, tt.run); n > tt.max {
				t.Errorf("%v allocations, want at most %v", n, tt.max)
			}
			if tt.wantIP != "" && sawIP.String() != tt.wantIP {
				t.Errorf("the handshake middleware saw client %v, want %s", sawIP, tt.wantIP)
			}
		})
	}
}
