package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"sync"
)

var errMACMismatch = errors.New("HMAC does not match")

// hmacHashes are the hashes of the HS* algorithms (RFC 7518 section 3.2).
var hmacHashes = map[string]func() hash.Hash{
	"HS256": sha256.New,
	"HS384": sha512.New384,
	"HS512": sha512.New,
}

// macVerifier checks the signatures of one HMAC key. crypto/hmac keys a
// MAC once, and Reset returns it to that keyed state, so pooled MACs spare
// each verification the key schedule and the eight allocations of keying
// a new MAC per call, as dsig does.
type macVerifier struct {
	pool sync.Pool // of *pooledMAC
}

type pooledMAC struct {
	h        hash.Hash
	buf, sum []byte
}

func newMACVerifier(newHash func() hash.Hash, key []byte) *macVerifier {
	key = bytes.Clone(key)
	m := &macVerifier{}
	m.pool.New = func() any { return &pooledMAC{h: hmac.New(newHash, key)} }
	return m
}

// verify reports, in constant time, whether sig is the MAC of signed.
func (m *macVerifier) verify(signed string, sig []byte) bool {
	p := m.pool.Get().(*pooledMAC)
	defer m.pool.Put(p)
	p.h.Reset()
	// A hash.Hash takes no string; the pooled buffer spares a copy per call.
	p.buf = append(p.buf[:0], signed...)
	p.h.Write(p.buf)
	p.sum = p.h.Sum(p.sum[:0])
	return hmac.Equal(p.sum, sig)
}
