package validate

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// The signed envelope; the package documentation describes it.
const (
	signedTag    = "WSG1"
	sigLen       = 43 // base64url, unpadded, of a 32-byte HMAC-SHA256
	maxKeyIDLen  = 128
	maxSeqDigits = 20 // math.MaxUint64
	maxTSDigits  = 16 // unix milliseconds: beyond the year 300000
	maxTS        = 1e16 - 1
	minKeyLen    = 16
)

// DefaultSkew is how far a signed message's timestamp may be from the
// server's clock, either way, unless [WithSkew] says otherwise.
const DefaultSkew = 30 * time.Second

// KeyFunc returns the pre-shared HMAC key of the principal named by a
// signed message's key id. It returns a nil key and a nil error for an id
// it does not know (errlog.Unauthenticated). An error it returns closes
// the connection as the code of an errlog.Error in its chain says (wrap a
// key store that is down as errlog.Unavailable, close 1013); an error
// without one, a network error or io.EOF from the key store included, is
// errlog.Internal (close 1011): the peer did not cause it.
type KeyFunc func(ctx context.Context, keyID string) ([]byte, error)

// SignedOption configures [Signed].
type SignedOption func(*signedConfig)

type signedConfig struct {
	skew time.Duration
	now  func() time.Time
}

// WithSkew sets how far a timestamp may be from the server's clock, either
// way. It must be > 0; zero, which would refuse every message, is refused.
func WithSkew(d time.Duration) SignedOption {
	return func(c *signedConfig) {
		if d <= 0 {
			misconfigured(fmt.Sprintf("WithSkew(%v)", d), "must be > 0")
		}
		c.skew = d
	}
}

// WithSignedClock sets the clock timestamps are compared with; nil means
// time.Now.
func WithSignedClock(now func() time.Time) SignedOption {
	return func(c *signedConfig) { c.now = now }
}

var (
	errMalformedEnvelope = errors.New("malformed signed envelope")
	errUnknownKey        = errors.New("unknown key id")
	errKeyIDMismatch     = errors.New("key id is not the connection's principal")
	errBadSignature      = errors.New("signature does not verify")
	errSequence          = errors.New("sequence number did not increase (replay)")
	errTimestamp         = errors.New("timestamp outside the window (replay or clock skew)")
	errShortKey          = errors.New("pre-shared key shorter than 16 bytes")
)

type signedState struct {
	keyID string
	mac   hash.Hash // keyed on the first message, reset for each
	last  uint64
	sum   [sha256.Size]byte
}

// Signed returns middleware that admits only messages in the signed
// envelope (see the package documentation) whose HMAC-SHA256 verifies
// with the key keys returns for the envelope's key id, and hands the next
// handler the body alone. The key id names the principal: it must equal
// the connection's subject when the connection has one; otherwise the
// first verified message sets the subject to it. The key is looked up on
// the connection's first message and kept for the connection's life: to
// revoke a key, also close its connections.
//
// A malformed envelope, an unknown key id, a key id that changes or a
// signature that does not verify is errlog.Unauthenticated (close 4401).
// A verified message whose sequence number is not greater than the last
// one on the connection, or whose timestamp is more than the skew
// ([DefaultSkew]) away from the server's clock, is a replay:
// errlog.PolicyViolation (close 1008).
//
// Sequence numbers are per connection, and the envelope does not name the
// connection: a captured message replays, once on every new connection of
// the same key id, for as long as its timestamp is within the skew (up to
// [DefaultSkew], 30 s, either way). Keep envelopes from being captured
// (wss only), keep the skew short ([WithSkew]), and make messages whose
// repetition matters idempotent in the application (an id it remembers).
//
// The message keeps its digest of the whole envelope: Signed computes it
// before handing on the body, so that logs and [Dedup] name what was
// received. Put [Dedup], if used, before Signed: an identical retry is
// then absorbed rather than refused as a replay.
//
// Signed panics on a nil keys and on an invalid option.
func Signed(keys KeyFunc, opts ...SignedOption) wsguard.Middleware {
	if keys == nil {
		misconfigured("Signed(nil, ...)", "needs a KeyFunc")
	}
	cfg := signedConfig{skew: DefaultSkew}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	var states perConn[signedState]
	return func(next wsguard.Handler) wsguard.Handler {
		return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			env, err := parseSigned(m.Data)
			if err != nil {
				return errlog.NewError(errlog.Unauthenticated, err)
			}
			st := states.get(c)
			if err := st.key(ctx, c, keys, env.keyID); err != nil {
				return err
			}
			st.mac.Reset()
			st.mac.Write(m.Data[sigLen+1:])
			if !hmac.Equal(st.mac.Sum(st.sum[:0]), env.sig[:]) {
				return errlog.NewError(errlog.Unauthenticated, errBadSignature)
			}
			if c.Subject() == "" {
				c.SetSubject(st.keyID)
			}
			if env.seq <= st.last {
				return errlog.NewError(errlog.PolicyViolation, errSequence)
			}
			now := cfg.now()
			if d := now.Sub(time.UnixMilli(env.ts)); d > cfg.skew || d < -cfg.skew {
				return errlog.NewError(errlog.PolicyViolation, errTimestamp)
			}
			st.last = env.seq
			m.Digest()
			data := m.Data
			m.Data = data[env.body:]
			defer func() { m.Data = data }()
			return next.ServeMessage(ctx, c, m)
		})
	}
}

// key keys st.mac for keyID on the connection's first message and checks
// that later ones keep the same id.
func (st *signedState) key(ctx context.Context, c *wsguard.Conn, keys KeyFunc, keyID []byte) error {
	if st.mac != nil {
		if string(keyID) != st.keyID {
			return errlog.NewError(errlog.Unauthenticated, errKeyIDMismatch)
		}
		return nil
	}
	if sub := c.Subject(); sub != "" && sub != string(keyID) {
		return errlog.NewError(errlog.Unauthenticated, errKeyIDMismatch)
	}
	id := string(keyID)
	key, err := keys(ctx, id)
	switch {
	case err != nil:
		err = fmt.Errorf("validate: key lookup: %w", err)
		if _, ok := errors.AsType[*errlog.Error](err); !ok {
			// Not the transport's: a key store's EOF or dial error must
			// not read as this peer leaving.
			err = errlog.NewError(errlog.Internal, err)
		}
		return err
	case len(key) == 0:
		return errlog.NewError(errlog.Unauthenticated, errUnknownKey)
	case len(key) < minKeyLen:
		return errlog.NewError(errlog.Internal, errShortKey)
	}
	st.keyID, st.mac = id, hmac.New(sha256.New, key)
	return nil
}

type signedEnvelope struct {
	sig   [sha256.Size]byte
	keyID []byte
	seq   uint64
	ts    int64 // unix milliseconds
	body  int   // offset of the body in the message
}

// parseSigned parses the envelope's header. It accepts only the one
// canonical spelling of each field, so that a header has one meaning.
func parseSigned(data []byte) (signedEnvelope, error) {
	var env signedEnvelope
	if len(data) < sigLen+1 || data[sigLen] != ' ' {
		return env, errMalformedEnvelope
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(env.sig[:], data[:sigLen]); err != nil || n != sha256.Size {
		return env, errMalformedEnvelope
	}
	p := data[sigLen+1:]
	if len(p) < len(signedTag)+1 || string(p[:len(signedTag)]) != signedTag || p[len(signedTag)] != ' ' {
		return env, errMalformedEnvelope
	}
	off := sigLen + 1 + len(signedTag) + 1

	keyID, n := field(data[off:], ' ', maxKeyIDLen)
	if n < 0 || !validKeyID(keyID) {
		return env, errMalformedEnvelope
	}
	off += n
	seq, n := field(data[off:], ' ', maxSeqDigits)
	if n < 0 || !canonicalDigits(seq) {
		return env, errMalformedEnvelope
	}
	off += n
	ts, n := field(data[off:], '\n', maxTSDigits)
	if n < 0 || !canonicalDigits(ts) {
		return env, errMalformedEnvelope
	}
	off += n

	var err error
	if env.seq, err = strconv.ParseUint(string(seq), 10, 64); err != nil {
		return env, errMalformedEnvelope
	}
	// 16 digits always fit an int64.
	t, _ := strconv.ParseInt(string(ts), 10, 64)
	env.keyID, env.ts, env.body = keyID, t, off
	return env, nil
}

// field returns the bytes of p before sep, at most max of them, and how
// many bytes it consumed with sep; -1 when sep does not come in time.
func field(p []byte, sep byte, max int) ([]byte, int) {
	for i := 0; i < len(p) && i <= max; i++ {
		if p[i] == sep {
			return p[:i], i + 1
		}
	}
	return nil, -1
}

// canonicalDigits reports whether s is a decimal number without sign or
// leading zero.
func canonicalDigits(s []byte) bool {
	if len(s) == 0 || len(s) > 1 && s[0] == '0' {
		return false
	}
	for _, b := range s {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// validKeyID reports whether s is a key id: 1 to 128 bytes of letters,
// digits and "-._~@:+=" (enough for UUIDs, e-mail addresses, base64url
// and URNs, nothing that needs escaping in a log).
func validKeyID(s []byte) bool {
	if len(s) == 0 || len(s) > maxKeyIDLen {
		return false
	}
	for _, b := range s {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '-', b == '.', b == '_', b == '~', b == '@', b == ':', b == '+', b == '=':
		default:
			return false
		}
	}
	return true
}

// Sign returns body in the signed envelope that [Signed] verifies: the
// client side, for Go clients (devices, backend peers). seq must grow with
// every message on a connection; ts is normally time.Now(). Sign fails on
// a key id that is not 1 to 128 bytes of letters, digits and "-._~@:+=",
// on a key shorter than 16 bytes, and on a time before 1970 or too far
// ahead for 16 digits of milliseconds.
func Sign(key []byte, keyID string, seq uint64, ts time.Time, body []byte) ([]byte, error) {
	if !validKeyID([]byte(keyID)) {
		return nil, errors.New("validate: Sign: invalid key id")
	}
	if len(key) < minKeyLen {
		return nil, errors.New("validate: Sign: key shorter than 16 bytes")
	}
	ms := ts.UnixMilli()
	if ms < 0 || ms > maxTS {
		return nil, errors.New("validate: Sign: time before 1970 or after the year 300000")
	}
	out := make([]byte, sigLen+1, sigLen+1+len(signedTag)+len(keyID)+maxSeqDigits+maxTSDigits+4+len(body))
	out[sigLen] = ' '
	out = append(out, signedTag+" "...)
	out = append(out, keyID...)
	out = append(out, ' ')
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, ' ')
	out = strconv.AppendInt(out, ms, 10)
	out = append(out, '\n')
	out = append(out, body...)
	mac := hmac.New(sha256.New, key)
	mac.Write(out[sigLen+1:])
	base64.RawURLEncoding.Encode(out[:sigLen], mac.Sum(nil))
	return out, nil
}
