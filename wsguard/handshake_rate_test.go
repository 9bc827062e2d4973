package wsguard

import (
	"container/list"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestHandshakeLimitBoundedMemory(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start
	l := NewHandshakeLimit(1, 2, WithGuardClock(func() time.Time { return now }))
	l.maxClients = 3
	check := func(ip string) error {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = ip + ":1"
		return l.Check(r)
	}
	tracked := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.clients) != l.lru.Len() {
			t.Fatalf("map has %d clients, list %d", len(l.clients), l.lru.Len())
		}
		return len(l.clients)
	}

	// A flood from more clients than the table holds stays within it.
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"} {
		for range 2 {
			if err := check(ip); err != nil {
				t.Fatalf("%s: %v", ip, err)
			}
		}
		if n := tracked(); n > 3 {
			t.Fatalf("tracking %d clients, cap 3", n)
		}
	}
	// The most recently seen clients are kept: their buckets stay empty.
	for _, ip := range []string{"192.0.2.4", "192.0.2.5"} {
		if err := check(ip); err == nil {
			t.Errorf("%s: admitted, want its empty bucket kept", ip)
		}
	}
	// The least recently seen was forgotten and starts afresh.
	if err := check("192.0.2.1"); err != nil {
		t.Errorf("evicted client: %v", err)
	}

	// Once the flood stops, refilled buckets are dropped.
	now = now.Add(time.Minute)
	if err := check("192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	if n := tracked(); n != 1 {
		t.Errorf("tracking %d clients after a quiet minute, want 1", n)
	}
}

// A client whose bucket has refilled keeps it when it comes back, instead
// of having it dropped as stale and made again for the same request.
func TestHandshakeLimitKeepsReturningClient(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := NewHandshakeLimit(1, 2, WithGuardClock(func() time.Time { return now }))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1"
	key := netip.MustParseAddr("192.0.2.1")
	bucket := func() *list.Element {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.clients[key]
	}
	if err := l.Check(r); err != nil {
		t.Fatal(err)
	}
	first := bucket()
	now = now.Add(time.Minute)
	if err := l.Check(r); err != nil {
		t.Fatal(err)
	}
	if e := bucket(); e == nil || e != first {
		t.Fatalf("bucket %p after the refill, want the first one %p", e, first)
	}
}
