package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsguard/kit/auth"
)

// TestHandshakeAllocations holds what authenticating a handshake
// allocates: a handshake runs once per connection, thousands of times a
// second in a reconnect storm, and each allocation is the collector's
// work. A known token costs the caller's copy of its principal only; a
// full verification its claims, its decoded parts (in one buffer), its
// header and its principal; the handshake middleware its session (which
// holds the principal's copy and the context that carries the session),
// the subject's context and the request copy. AllocsPerRun cannot run in
// parallel.
func TestHandshakeAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector changes what allocates")
	}
	ctx := context.Background()
	tok := mint(t, valid("alice", time.Hour))
	cached, uncached := hsVerifier(t), hsVerifier(t, auth.WithVerifiedCache(0))
	must(cached.Verify(ctx, tok))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+string(tok))
	w := httptest.NewRecorder()
	var admitted *auth.Principal
	mw := auth.Middleware(cached)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		admitted, _ = auth.PrincipalFrom(r.Context())
	}))
	tests := []struct {
		name string
		max  float64
		run  func()
	}{
		{"Verify, known token", 1, func() { must(cached.Verify(ctx, tok)) }},
		{"Verify, in full", 4, func() { must(uncached.Verify(ctx, tok)) }},
		{"Middleware, known token", 3, func() { mw.ServeHTTP(w, r) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testing.AllocsPerRun(100, tt.run)
			if n > tt.max {
				t.Errorf("%v allocations, want at most %v", n, tt.max)
			}
		})
	}
	if admitted == nil || admitted.Subject != "alice" {
		t.Errorf("the middleware passed on %+v, want alice's principal", admitted)
	}
}
