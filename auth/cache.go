package auth

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// DefaultVerifiedCacheSize is how many verified tokens a [Verifier]
// remembers unless told otherwise ([WithVerifiedCache]).
const DefaultVerifiedCacheSize = 10_000

// WithVerifiedCache sets how many verified tokens the verifier remembers,
// least recently used first out; 0 turns the cache off, and a negative
// size is refused. The
// default is [DefaultVerifiedCacheSize]. Only tokens the issuer signed
// get in, each costing about its decoded claims (some hundreds of bytes
// for a typical token).
//
// The cache is on by default because it changes no answer, only the cost
// of a repeated one, and a reconnect storm (a deploy, a network blip)
// presents the same tokens again: a full verification costs about as
// much as a bare handshake (tens of microseconds for HS256, over a
// hundred for ES256 or EdDSA), a hit under a microsecond. It keeps the
// answer exact thus:
//
//   - it is keyed by the SHA-256 digest of the whole token (header,
//     claims and signature), never the token itself, so a token that
//     differs in any byte, such as a forged signature over the same
//     claims, is a miss and is verified in full;
//   - only a successful verification is remembered: a refused token is
//     refused afresh each time;
//   - what was checked depends on the token's bytes alone (signature,
//     algorithm, issuer, audience, required claims, lifetime), except
//     exp, nbf and iat, which are checked again on every hit against the
//     verifier's clock and leeway by the same code as in a full
//     verification; when one fails, or the keys a key-set token's kid
//     names are no longer the ones that verified it (a JWKS rotation, a
//     key removed), the entry is dropped and the token verified in full,
//     so it is refused with the very error an uncached one gets;
//   - revocation is not cached: [Middleware] and [Sessions] ask the
//     [Revoker] after every verification, hit or not.
//
// A hit returns a copy of the [Principal] the verification it remembers
// made, so that no caller can change what the next one gets: for the
// typical token, whose principal has no audience or private claims, one
// allocation of 128 bytes.
func WithVerifiedCache(n int) VerifierOption {
	return func(c *verifierConfig) {
		if n < 0 {
			c.refuse(fmt.Sprintf("WithVerifiedCache(%d)", n), "must be >= 0 (0: no cache)")
		}
		c.cacheSize = n
	}
}

// digest identifies a token in the cache.
type digest [sha256.Size]byte

// tokenDigest returns the digest of t. The token is hashed a block at a
// time through a small buffer: a buffer for the whole token (2 KiB in
// Verify's frame, once) made a large part of the stack a handshake needs,
// which the serving goroutine grows, copying it, whenever it runs short;
// converting the token to a slice allocates a copy of it per handshake.
func tokenDigest(t Token) digest {
	h := sha256.New()
	var block [sha256.BlockSize]byte
	for len(t) > 0 {
		n := copy(block[:], t)
		h.Write(block[:n])
		t = t[n:]
	}
	var d digest
	h.Sum(d[:0])
	return d
}

// verified is a remembered verification: what a hit must check again.
type verified struct {
	key        digest
	p          *Principal
	exp        time.Time
	nbf, iat   time.Time // zero when absent
	kid        string    // key sets only
	keys       []jwk.Key // key sets only: the keys kid named at verification
	prev, next *verified // in recency order, most recent first
}

// tokenCache is a bounded LRU map from token digest to verification. A
// mutex is enough: a hit holds it for a map lookup and two pointer moves,
// next to the tens of microseconds of a handshake.
type tokenCache struct {
	mu      sync.Mutex
	size    int
	entries map[digest]*verified
	head    *verified // most recently used
	tail    *verified // least recently used
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{size: size, entries: make(map[digest]*verified, min(size, 1024))}
}

// get returns the entry of k, making it the most recently used.
func (c *tokenCache) get(k digest) *verified {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e != nil && e != c.head {
		c.unlink(e)
		c.pushFront(e)
	}
	return e
}

// put adds e, replacing an entry of the same key and evicting the least
// recently used entry when full.
func (c *tokenCache) put(e *verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[e.key]; old != nil {
		c.unlink(old)
	} else if len(c.entries) >= c.size {
		lru := c.tail
		c.unlink(lru)
		delete(c.entries, lru.key)
	}
	c.entries[e.key] = e
	c.pushFront(e)
}

// remove drops e, unless its key has been given another entry since.
func (c *tokenCache) remove(e *verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[e.key] == e {
		c.unlink(e)
		delete(c.entries, e.key)
	}
}

// len returns the number of entries.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *tokenCache) pushFront(e *verified) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *tokenCache) unlink(e *verified) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// stillValid reports whether a fresh verification of e's token would
// succeed now: its time claims hold at now, checked by the same
// [Verifier.checkTimes] as a full verification, and a key-set token's kid
// still names the keys that verified it.
func (v *Verifier) stillValid(e *verified, now time.Time) bool {
	if v.checkTimes(e.exp, e.nbf, e.iat, now) != nil {
		return false
	}
	if v.alg != "" {
		return true
	}
	return sameKeys(e.keys, v.kidKeys(e.kid))
}

// kidKeys returns the keys of a key-set verifier's current set that kid
// names: the candidates jwx verifies a token naming kid with.
func (v *Verifier) kidKeys(kid string) []jwk.Key {
	set := v.keys
	if v.jwks != nil {
		set = v.jwks.set
	}
	var keys []jwk.Key
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if id, ok := k.KeyID(); ok && id == kid {
			keys = append(keys, k)
		}
	}
	return keys
}

// sameKeys reports whether a and b hold the same key objects in the same
// order. A refreshed JWKS holds new objects, so a refresh makes every
// cached key-set token a miss once: the cost of not comparing key
// material.
func sameKeys(a, b []jwk.Key) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if !reflect.TypeOf(a[i]).Comparable() || a[i] != b[i] {
			return false
		}
	}
	return true
}
