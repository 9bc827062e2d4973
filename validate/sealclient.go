package validate

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// SealClient is the client side of [Sealed], for Go clients: it seals
// messages for the server and opens the server's sealed replies. Use one
// per connection, from one goroutine at a time, and send messages in the
// order they were sealed: sequence numbers count per connection.
type SealClient struct {
	kid    string
	alg    string
	server any // *ecdh.PublicKey or the 32-byte shared key
	reply  *ecdh.PrivateKey
	seq    uint64
	last   uint64
	now    func() time.Time
}

// NewSealClient returns a client that seals for the server key named by
// server's "kid": an EC P-256 public key (ECDH-ES+A256KW; the client
// makes a P-256 key pair for the replies and sends its public half in the
// first message) or a 32-byte symmetric key ("dir", replies sealed with
// the same key). now is the clock of the payload's timestamp; nil means
// time.Now. It fails on a key of another type, size or "alg" and on a key
// without a valid kid.
func NewSealClient(server jwk.Key, now func() time.Time) (*SealClient, error) {
	if server == nil {
		return nil, errors.New("validate: NewSealClient: nil key")
	}
	kid, ok := server.KeyID()
	if !ok || !validKeyID([]byte(kid)) {
		return nil, errors.New(`validate: NewSealClient: the key needs a "kid" of 1 to 128 letters, digits and "-._~@:+="`)
	}
	if now == nil {
		now = time.Now
	}
	c := &SealClient{kid: kid, now: now}
	var raw any
	if err := jwk.Export(server, &raw); err != nil {
		return nil, fmt.Errorf("validate: NewSealClient: %w", err)
	}
	switch raw := raw.(type) {
	case *ecdsa.PublicKey:
		pub, err := raw.ECDH()
		if err != nil || pub.Curve() != ecdh.P256() {
			return nil, errors.New("validate: NewSealClient: EC keys must be on P-256")
		}
		if c.reply, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("validate: NewSealClient: %w", err)
		}
		c.alg, c.server = algECDH, pub
	case []byte:
		if len(raw) != sharedKeyLen {
			return nil, errors.New("validate: NewSealClient: symmetric keys must be 32 bytes")
		}
		c.alg, c.server = algDir, raw
	default:
		return nil, fmt.Errorf("validate: NewSealClient: a %T is neither an EC P-256 public key nor a 32-byte symmetric key", raw)
	}
	if alg, ok := server.Algorithm(); ok && alg.String() != c.alg {
		return nil, fmt.Errorf("validate: NewSealClient: the key's alg %q is not %q", alg.String(), c.alg)
	}
	return c, nil
}

// Seal returns body sealed for the server with the next sequence number
// and the current time: a compact JWE to send as a text message.
func (c *SealClient) Seal(body []byte) ([]byte, error) {
	var rpk *ecdh.PublicKey
	if c.seq == 0 && c.reply != nil {
		rpk = c.reply.PublicKey()
	}
	alg := jwa.DIRECT()
	if c.alg == algECDH {
		alg = jwa.ECDH_ES_A256KW()
	}
	out, err := sealTo(alg, c.server, c.kid, rpk, sealedToServer, c.seq+1, c.now(), body)
	if err != nil {
		return nil, fmt.Errorf("validate: SealClient.Seal: %w", err)
	}
	c.seq++
	return out, nil
}

// Open returns the body of a reply the server sealed with [Sealed.Send].
// It refuses a message outside the profile, one that does not decrypt,
// one sealed in the client's direction, and one whose sequence number is
// not greater than the last reply's (a replay); the error names the
// check, for the client's own log. The reply's timestamp is
// not checked: a client's clock is not to be trusted to be right.
func (c *SealClient) Open(msg []byte) ([]byte, error) {
	body, err := c.open(msg)
	if err != nil {
		return nil, fmt.Errorf("validate: SealClient.Open: sealed reply refused: %w", err)
	}
	return body, nil
}

func (c *SealClient) open(msg []byte) ([]byte, error) {
	env, err := parseSealed(msg)
	if err != nil {
		return nil, err
	}
	if env.alg != c.alg {
		return nil, errSealedAlg
	}
	if err := env.fits(c.alg, false); err != nil {
		return nil, err
	}
	var pt []byte
	if c.alg == algDir {
		if env.kid != c.kid {
			return nil, errSealedKid
		}
		pt, err = jwe.Decrypt(msg, jwe.WithKey(jwa.DIRECT(), c.server))
	} else {
		pt, err = jwe.Decrypt(msg, jwe.WithKey(jwa.ECDH_ES_A256KW(), c.reply))
	}
	if err != nil {
		return nil, errSealedOpen
	}
	seq, _, body, err := parseSealedInner(pt, sealedToClient)
	if err != nil {
		return nil, err
	}
	if seq <= c.last {
		return nil, errSequence
	}
	c.last = seq
	return body, nil
}
