package auth

import (
	"strconv"
	"testing"
	"time"
)

// TestMemoryRevokerForgets checks that revocations past their end do not
// accumulate.
func TestMemoryRevokerForgets(t *testing.T) {
	t.Parallel()
	m := NewMemoryRevoker()
	past := time.Now().Add(-time.Second)
	for i := range 10 * minPrune {
		m.RevokeToken(strconv.Itoa(i), past)
	}
	m.RevokeToken("live", time.Now().Add(time.Hour))
	if n := len(m.tokens); n > minPrune {
		t.Fatalf("%d revocations kept, want at most %d", n, minPrune)
	}
	if _, ok := m.tokens["live"]; !ok {
		t.Fatal("the live revocation was dropped")
	}
}
