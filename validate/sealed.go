package validate

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// The sealed envelope; the package documentation describes it.
const (
	sealedTag       = "WSE1"
	sealedToServer  = 'c'
	sealedToClient  = 's'
	algECDH         = "ECDH-ES+A256KW"
	algDir          = "dir"
	encGCM          = "A256GCM"
	maxSealedHeader = 1024 // base64url characters of the protected header
	sharedKeyLen    = 32
	wrappedKeyLen   = 54 // base64url of an A256KW-wrapped 32-byte key (40 bytes)
	gcmIVLen        = 16 // base64url of a 12-byte IV
	gcmTagLen       = 22 // base64url of a 16-byte tag
	p256CoordLen    = 43 // base64url of a 32-byte P-256 coordinate
)

var (
	errSealedForm       = errors.New("not a compact JWE in the sealed profile")
	errSealedHeader     = errors.New("protected header outside the sealed profile")
	errSealedKid        = errors.New("unknown key id")
	errSealedKidMoved   = errors.New("key id is not the one the connection started with")
	errSealedAlg        = errors.New("algorithm is not the key's")
	errSealedOpen       = errors.New("does not decrypt with the key")
	errSealedInner      = errors.New("malformed sealed payload")
	errSealedReplyKey   = errors.New("reply key is not the one the connection started with")
	errSealedNoReplyKey = errors.New("the first message under an EC key carries no reply key")
	errNoReplyKey       = errors.New("validate: Sealed.Send: no sealed message opened on the connection (not yet, or it is closed)")
)

// sealedKey is one of the server's keys, with the only algorithm it is
// used with.
type sealedKey struct {
	alg string
	jwa jwa.KeyEncryptionAlgorithm
	key any // *ecdsa.PrivateKey for algECDH, []byte for algDir
}

// Sealed opens messages sealed for the server as compact JWE (see the
// package documentation) and seals replies to the client. Make one with
// [NewSealed]; it is safe for concurrent use.
type Sealed struct {
	keys   map[string]*sealedKey
	cfg    signedConfig
	states perConn[sealedState]
}

type sealedState struct {
	last uint64 // the last sequence number received; the reading goroutine only

	mu    sync.Mutex // kid, key and reply: Send runs on any goroutine
	kid   string
	key   *sealedKey
	reply *ecdh.PublicKey // the client's reply key, ECDH keys only

	// sendMu is held from numbering a reply to writing it, so that
	// replies leave in the order of their sequence numbers.
	sendMu  sync.Mutex
	sendSeq uint64
}

// NewSealed returns a [Sealed] that opens messages with the keys of set,
// each named by its "kid". The key decides the algorithm, never the
// message: an EC P-256 private key is used with ECDH-ES+A256KW, a 32-byte
// symmetric key with "dir"; the content is always A256GCM. A key whose
// "alg" names another algorithm is refused. The set is read once: to
// rotate, serve a set with the old key and the new, move the clients to
// the new kid, then serve one without the old key once the connections
// that started with it are gone (a connection keeps the kid of its first
// message).
//
// The options are [Signed]'s: [WithSkew] and [WithSignedClock] set the
// time window of the sealed payload's timestamp.
//
// NewSealed panics on an empty set, a key without a kid, a kid used twice,
// a key of another type or size, and on an invalid option.
func NewSealed(set jwk.Set, opts ...SignedOption) *Sealed {
	if set == nil || set.Len() == 0 {
		misconfigured("NewSealed("+nilOr(set == nil, "empty set")+", ...)", "needs at least one key")
	}
	s := &Sealed{keys: make(map[string]*sealedKey, set.Len()), cfg: signedConfig{skew: DefaultSkew}}
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, ok := k.KeyID()
		if !ok || !validKeyID([]byte(kid)) {
			misconfigured(fmt.Sprintf("NewSealed(key %d)", i), `needs a "kid" of 1 to 128 letters, digits and "-._~@:+="`)
		}
		if _, dup := s.keys[kid]; dup {
			misconfigured(fmt.Sprintf("NewSealed(kid %q)", kid), "kid used twice")
		}
		sk, err := newSealedKey(k)
		if err != nil {
			misconfigured(fmt.Sprintf("NewSealed(kid %q)", kid), err.Error())
		}
		s.keys[kid] = sk
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	if s.cfg.now == nil {
		s.cfg.now = time.Now
	}
	return s
}

func newSealedKey(k jwk.Key) (*sealedKey, error) {
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, err
	}
	sk := new(sealedKey)
	switch raw := raw.(type) {
	case *ecdsa.PrivateKey:
		if raw.Curve.Params().Name != "P-256" {
			return nil, errors.New("EC keys must be on P-256")
		}
		sk.alg, sk.jwa, sk.key = algECDH, jwa.ECDH_ES_A256KW(), raw
	case []byte:
		if len(raw) != sharedKeyLen {
			return nil, errors.New("symmetric keys must be 32 bytes")
		}
		sk.alg, sk.jwa, sk.key = algDir, jwa.DIRECT(), raw
	default:
		return nil, fmt.Errorf("a %T is neither an EC P-256 private key nor a 32-byte symmetric key", raw)
	}
	if alg, ok := k.Algorithm(); ok && alg.String() != sk.alg {
		return nil, fmt.Errorf("the key's alg %q is not %q", alg.String(), sk.alg)
	}
	return sk, nil
}

// Middleware is the message middleware: it admits only sealed messages
// that open with one of the keys, and hands the next handler the
// plaintext body. Use it as a [wsguard.Middleware]:
//
//	wsguard.NewChain(sealed.Middleware).Then(router)
//
// Every refusal, whatever the check that failed, is errlog.PolicyViolation
// (close 1008) with the code's short text, so that a client learns nothing
// of why; the server's log line names the check and the digest of the
// sealed message, never its content. The message keeps that digest, of
// the ciphertext, for logs and [Dedup]. Put [Dedup], if used, before
// Middleware: an identical retry is then absorbed rather than refused as
// a replay.
func (s *Sealed) Middleware(next wsguard.Handler) wsguard.Handler {
	return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		st := s.states.get(c)
		body, err := s.open(st, m.Data)
		if err != nil {
			return errlog.NewError(errlog.PolicyViolation, fmt.Errorf("validate: sealed message refused: %w", err))
		}
		m.Digest()
		data := m.Data
		m.Data = body
		defer func() { m.Data = data }()
		return next.ServeMessage(ctx, c, m)
	})
}

// open checks data against the profile and the connection's state, then
// decrypts it; only a message that passes all of it changes the state.
func (s *Sealed) open(st *sealedState, data []byte) ([]byte, error) {
	env, err := parseSealed(data)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	pinnedKid, pinnedReply := st.kid, st.reply
	st.mu.Unlock()
	if pinnedKid != "" && env.kid != pinnedKid {
		return nil, errSealedKidMoved
	}
	key, ok := s.keys[env.kid]
	if !ok {
		return nil, errSealedKid
	}
	if env.alg != key.alg {
		return nil, errSealedAlg
	}
	if err := env.fits(key.alg, true); err != nil {
		return nil, err
	}
	var reply *ecdh.PublicKey
	if key.alg == algECDH && pinnedReply == nil && env.rpk == nil {
		return nil, errSealedNoReplyKey
	}
	if env.rpk != nil {
		if reply, err = env.rpk.publicKey(); err != nil {
			return nil, errSealedHeader
		}
		if pinnedReply != nil && !pinnedReply.Equal(reply) {
			return nil, errSealedReplyKey
		}
	}
	pt, err := jwe.Decrypt(data, jwe.WithKey(key.jwa, key.key))
	if err != nil {
		return nil, errSealedOpen
	}
	seq, ts, body, err := parseSealedInner(pt, sealedToServer)
	if err != nil {
		return nil, err
	}
	if seq <= st.last {
		return nil, errSequence
	}
	if d := s.cfg.now().Sub(time.UnixMilli(ts)); d > s.cfg.skew || d < -s.cfg.skew {
		return nil, errTimestamp
	}
	st.last = seq
	st.mu.Lock()
	if st.kid == "" {
		st.kid, st.key = env.kid, key
	}
	if st.reply == nil && reply != nil {
		st.reply = reply
	}
	st.mu.Unlock()
	return body, nil
}

// Send seals body for the client of connection c and sends it as a text
// message. With a symmetric key the reply uses the connection's key;
// with an EC key it is sealed with ECDH-ES+A256KW to the reply key the
// client pinned in its first message ("rpk"). Send fails before the
// connection's first sealed message. It is safe to call from any
// goroutine; the sends on one connection take turns, so that the client
// receives them in the order of their sequence numbers.
func (s *Sealed) Send(ctx context.Context, c *wsguard.Conn, body []byte) error {
	v, ok := s.states.m.Load(c)
	if !ok {
		return errNoReplyKey
	}
	st := v.(*sealedState)
	st.mu.Lock()
	key, kid, reply := st.key, st.kid, st.reply
	st.mu.Unlock()
	if key == nil || key.alg == algECDH && reply == nil {
		return errNoReplyKey
	}
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	st.sendSeq++
	seq := st.sendSeq
	var out []byte
	var err error
	if key.alg == algDir {
		out, err = sealTo(jwa.DIRECT(), key.key, kid, nil, sealedToClient, seq, s.cfg.now(), body)
	} else {
		out, err = sealTo(jwa.ECDH_ES_A256KW(), reply, "", nil, sealedToClient, seq, s.cfg.now(), body)
	}
	if err != nil {
		return errlog.NewError(errlog.Internal, fmt.Errorf("validate: Sealed.Send: %w", err))
	}
	return c.Send(ctx, wsguard.MessageText, out)
}

// sealTo encrypts the sealed payload (tag, direction, seq, ts, body) as
// compact JWE with A256GCM. kid and rpk, when set, go into the protected
// header.
func sealTo(alg jwa.KeyEncryptionAlgorithm, key any, kid string, rpk *ecdh.PublicKey, dir byte, seq uint64, ts time.Time, body []byte) ([]byte, error) {
	ms := ts.UnixMilli()
	if ms < 0 || ms > maxTS {
		return nil, errors.New("time before 1970 or after the year 300000")
	}
	pt := make([]byte, 0, len(sealedTag)+3+maxSeqDigits+maxTSDigits+2+len(body))
	pt = append(pt, sealedTag+" "...)
	pt = append(pt, dir, ' ')
	pt = strconv.AppendUint(pt, seq, 10)
	pt = append(pt, ' ')
	pt = strconv.AppendInt(pt, ms, 10)
	pt = append(pt, '\n')
	pt = append(pt, body...)
	h := jwe.NewHeaders()
	if kid != "" {
		if err := h.Set(jwk.KeyIDKey, kid); err != nil {
			return nil, err
		}
	}
	if rpk != nil {
		if err := h.Set("rpk", ecJWKOf(rpk)); err != nil {
			return nil, err
		}
	}
	return jwe.Encrypt(pt,
		jwe.WithKey(alg, key),
		jwe.WithContentEncryption(jwa.A256GCM()),
		jwe.WithProtectedHeaders(h),
		jwe.WithCompact())
}

// sealedEnvelope is what parseSealed read from a compact JWE without
// decrypting anything.
type sealedEnvelope struct {
	alg, kid string
	epk, rpk *ecJWK
	ek       []byte // the encrypted key part, still base64url
}

// sealedHeader is the protected header of the profile: any other member
// ("zip", "crit", "jku", "jwk", "x5u", "apu", "p2c", ...) is refused.
type sealedHeader struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	Kid string `json:"kid,omitempty"`
	Epk *ecJWK `json:"epk,omitempty"`
	Rpk *ecJWK `json:"rpk,omitempty"`
}

// ecJWK is a P-256 public key as a JWK with nothing else in it: a private
// "d" or any other member is refused.
type ecJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func (k *ecJWK) publicKey() (*ecdh.PublicKey, error) {
	if k.Kty != "EC" || k.Crv != "P-256" || len(k.X) != p256CoordLen || len(k.Y) != p256CoordLen {
		return nil, errSealedHeader
	}
	pt := make([]byte, 1, 65)
	pt[0] = 4
	pt, errX := base64.RawURLEncoding.Strict().AppendDecode(pt, []byte(k.X))
	pt, errY := base64.RawURLEncoding.Strict().AppendDecode(pt, []byte(k.Y))
	if errX != nil || errY != nil {
		return nil, errSealedHeader
	}
	return ecdh.P256().NewPublicKey(pt)
}

func ecJWKOf(pub *ecdh.PublicKey) *ecJWK {
	b := pub.Bytes() // 0x04 || X || Y
	return &ecJWK{
		Kty: "EC", Crv: "P-256",
		X: base64.RawURLEncoding.EncodeToString(b[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(b[33:]),
	}
}

var sealedHeaderOptions = json.JoinOptions(json.RejectUnknownMembers(true))

// parseSealed checks the form of a compact JWE in the profile: exactly
// five base64url parts, a bounded protected header with only the
// profile's members, and the sizes A256GCM fixes. It decrypts nothing.
func parseSealed(data []byte) (sealedEnvelope, error) {
	var env sealedEnvelope
	var parts [5][]byte
	rest := data
	for i := range 4 {
		var ok bool
		if parts[i], rest, ok = bytes.Cut(rest, []byte{'.'}); !ok {
			return env, errSealedForm
		}
	}
	parts[4] = rest
	if bytes.IndexByte(rest, '.') >= 0 || len(parts[0]) == 0 || len(parts[0]) > maxSealedHeader ||
		len(parts[2]) != gcmIVLen || len(parts[4]) != gcmTagLen {
		return env, errSealedForm
	}
	for _, p := range parts {
		if !base64URL(p) {
			return env, errSealedForm
		}
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(string(parts[0]))
	if err != nil {
		return env, errSealedForm
	}
	var h sealedHeader
	if err := json.Unmarshal(raw, &h, sealedHeaderOptions); err != nil {
		return env, errSealedHeader
	}
	if h.Enc != encGCM {
		return env, errSealedAlg
	}
	env.alg, env.kid, env.epk, env.rpk, env.ek = h.Alg, h.Kid, h.Epk, h.Rpk, parts[1]
	return env, nil
}

// fits checks the header members and the encrypted key that alg needs.
// toServer: a message for the server, which must name its key.
func (env *sealedEnvelope) fits(alg string, toServer bool) error {
	switch alg {
	case algECDH:
		if env.epk == nil || len(env.ek) != wrappedKeyLen {
			return errSealedHeader
		}
		if _, err := env.epk.publicKey(); err != nil {
			return errSealedHeader
		}
		if !toServer && env.rpk != nil {
			return errSealedHeader
		}
	case algDir:
		if env.epk != nil || env.rpk != nil || len(env.ek) != 0 {
			return errSealedHeader
		}
	default:
		return errSealedAlg
	}
	return nil
}

// base64URL reports whether p is made of the base64url alphabet only.
func base64URL(p []byte) bool {
	for _, b := range p {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

// parseSealedInner parses the decrypted payload: "WSE1" SP dir SP seq SP
// ts LF body, each number in its one canonical spelling.
func parseSealedInner(pt []byte, dir byte) (seq uint64, ts int64, body []byte, err error) {
	if len(pt) < len(sealedTag)+3 || string(pt[:len(sealedTag)]) != sealedTag ||
		pt[len(sealedTag)] != ' ' || pt[len(sealedTag)+1] != dir || pt[len(sealedTag)+2] != ' ' {
		return 0, 0, nil, errSealedInner
	}
	off := len(sealedTag) + 3
	s, n := field(pt[off:], ' ', maxSeqDigits)
	if n < 0 || !canonicalDigits(s) {
		return 0, 0, nil, errSealedInner
	}
	off += n
	t, n := field(pt[off:], '\n', maxTSDigits)
	if n < 0 || !canonicalDigits(t) {
		return 0, 0, nil, errSealedInner
	}
	off += n
	if seq, err = strconv.ParseUint(string(s), 10, 64); err != nil {
		return 0, 0, nil, errSealedInner
	}
	ts, _ = strconv.ParseInt(string(t), 10, 64)
	return seq, ts, pt[off:], nil
}
