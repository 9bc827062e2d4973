package validate

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
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

// FuzzSealClientOpen feeds a Go client anything as a server's reply: it
// never panics, refuses with one of its own errors, and admits only
// replies in the server's direction whose sequence number grows.
func FuzzSealClientOpen(f *testing.F) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ec, err := jwk.Import(pk)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(ec)
	if err != nil {
		f.Fatal(err)
	}
	rawShared := bytes.Repeat([]byte{9}, 32)
	shared, err := jwk.Import(rawShared)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []jwk.Key{pub, shared} {
		if err := k.Set(jwk.KeyIDKey, "k"); err != nil {
			f.Fatal(err)
		}
	}
	ecClient, err := NewSealClient(pub, nil)
	if err != nil {
		f.Fatal(err)
	}
	dirClient, err := NewSealClient(shared, nil)
	if err != nil {
		f.Fatal(err)
	}
	for seq := range uint64(3) {
		for _, body := range []string{`{"type":"ok"}`, ""} {
			r, err := sealTo(jwa.ECDH_ES_A256KW(), ecClient.reply.PublicKey(), "", nil, sealedToClient, seq, now, []byte(body))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(false, r)
			r, err = sealTo(jwa.DIRECT(), rawShared, "k", nil, sealedToClient, seq, now, []byte(body))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(true, r)
			r, err = sealTo(jwa.DIRECT(), rawShared, "k", nil, sealedToServer, seq, now, []byte(body))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(true, r)
		}
	}
	known := []error{errSealedForm, errSealedHeader, errSealedKid, errSealedAlg, errSealedOpen, errSealedInner, errSequence}
	f.Fuzz(func(t *testing.T, dir bool, data []byte) {
		c := *ecClient
		if dir {
			c = *dirClient
		}
		c.last = 1 // so that a seeded reply numbered 1 or less is a replay
		body, err := c.Open(data)
		if err != nil {
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("%q: refused with an error of no check: %v", data, err)
		}
		if c.last < 2 || bytes.Count(data, []byte(".")) != 4 || len(body) > len(data) {
			t.Fatalf("%q: admitted as %q, last %d", data, body, c.last)
		}
	})
}
