package auth

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

func TestTokenCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	c := newTokenCache(3)
	key := func(i int) digest { return sha256.Sum256(fmt.Appendf(nil, "token-%d", i)) }
	for i := range 3 {
		c.put(&verified{key: key(i)})
	}
	if c.get(key(0)) == nil { // 0 becomes the most recently used
		t.Fatal("entry 0 missing")
	}
	c.put(&verified{key: key(3)}) // evicts 1
	if n := c.len(); n != 3 {
		t.Fatalf("len = %d, want 3", n)
	}
	for i, want := range []bool{true, false, true, true} {
		if got := c.get(key(i)) != nil; got != want {
			t.Errorf("entry %d present = %v, want %v", i, got, want)
		}
	}
	e := c.get(key(2))
	c.put(&verified{key: key(2)}) // replaces e
	c.remove(e)                   // a stale entry: the new one stays
	if c.get(key(2)) == nil || c.len() != 3 {
		t.Fatal("removing a replaced entry removed its successor")
	}
	c.remove(c.get(key(2)))
	if c.get(key(2)) != nil || c.len() != 2 {
		t.Fatal("entry 2 not removed")
	}
}

func TestTokenCacheOff(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(jwa.HS256(), fuzzSecret, WithVerifiedCache(0))
	if err != nil {
		t.Fatal(err)
	}
	if v.cache != nil {
		t.Error("WithVerifiedCache(0) left a cache")
	}
}
