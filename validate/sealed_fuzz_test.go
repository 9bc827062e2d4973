package validate

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// FuzzSealedOpen feeds the server's side of Sealed anything: it never
// panics, refuses with one of its own errors (the middleware maps them
// all to one code), and admits only messages in the profile that carry
// the client's direction and a sequence number above the last one.
func FuzzSealedOpen(f *testing.F) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ec, err := jwk.Import(pk)
	if err != nil {
		f.Fatal(err)
	}
	shared, err := jwk.Import(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	set := jwk.NewSet()
	for kid, k := range map[string]jwk.Key{"ec": ec, "dir": shared} {
		if err := k.Set(jwk.KeyIDKey, kid); err != nil {
			f.Fatal(err)
		}
		if err := set.AddKey(k); err != nil {
			f.Fatal(err)
		}
	}
	s := NewSealed(set, WithSignedClock(func() time.Time { return now }))
	pub, err := jwk.PublicKeyOf(ec)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []jwk.Key{pub, shared} {
		c, err := NewSealClient(k, func() time.Time { return now })
		if err != nil {
			f.Fatal(err)
		}
		for _, body := range []string{`{"type":"say"}`, ""} {
			msg, err := c.Seal([]byte(body))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(msg)
			f.Add(msg[:len(msg)-1])
			f.Add(bytes.Replace(msg, []byte("."), []byte(".."), 1))
		}
	}
	f.Add([]byte("...."))
	f.Add([]byte(`{"protected":"e30","recipients":[{},{}]}`))
	known := []error{errSealedForm, errSealedHeader, errSealedKid, errSealedKidMoved, errSealedAlg,
		errSealedOpen, errSealedInner, errSealedReplyKey, errSealedNoReplyKey, errSequence, errTimestamp}
	f.Fuzz(func(t *testing.T, data []byte) {
		st := new(sealedState)
		st.last = 1 // so that a seeded first message is a replay
		body, err := s.open(st, data)
		if err != nil {
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("%q: refused with an error of no check: %v", data, err)
		}
		if bytes.Count(data, []byte(".")) != 4 || bytes.ContainsAny(data, "={} \n") {
			t.Fatalf("%q: admitted outside the compact form", data)
		}
		if st.last < 2 || st.kid == "" || len(body) > len(data) {
			t.Fatalf("%q: admitted as %q with state %+v", data, body, st)
		}
	})
}
