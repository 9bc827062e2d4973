package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/lestrrat-go/dsig"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/wsguard/kit/errlog"
)

// Defaults of the strict profile.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat: enough
	// for servers whose clocks are synchronised, too little to matter to
	// an attacker holding an expired token.
	DefaultLeeway = 5 * time.Second
	// DefaultMaxTokenSize caps a token before any parsing, so that a
	// client cannot make the server decode megabytes of base64 and JSON.
	DefaultMaxTokenSize = 8 << 10
)

// The public texts of an authentication failure: a client may tell "get a
// new token" from "this token is no good", and learn nothing more.
const (
	textInvalid = "invalid token"
	textExpired = "token expired"
)

// minRSABits is the smallest RSA modulus accepted, after NIST SP 800-131A.
const minRSABits = 2048

// Verifier checks bearer tokens under a strict profile:
//
//   - the algorithm comes from the key, never from the token, so "alg":
//     "none" and HS/RS confusion are refused before the signature is
//     looked at;
//   - only the compact JWS form is accepted, at most 8 KiB
//     ([WithMaxTokenSize]), measured before parsing, and a header with
//     "crit" or "b64" is refused;
//   - header and claims are decoded strictly: a duplicate member, invalid
//     UTF-8, a part with more than one base64url spelling, or a registered
//     claim that is null or of the wrong type (an exp that is a string)
//     makes the token invalid, where a lenient decoder would pick one
//     reading of it;
//   - exp and sub are required, and exp, nbf and iat are honoured with a
//     leeway of 5 s ([WithLeeway]);
//   - iss and aud are enforced when configured ([WithIssuer],
//     [WithAudience]), as are further required claims
//     ([WithRequiredClaims]) and a maximum lifetime ([WithMaxLifetime]);
//   - a token verified before is answered from a bounded cache keyed by
//     its SHA-256 digest, its time claims checked again
//     ([WithVerifiedCache]): the same answer at a fraction of the cost.
//
// Every failure is an errlog.Unauthenticated error whose public text is
// "token expired" for an expired token and "invalid token" otherwise; the
// reason (bad signature, wrong issuer, ...) is in the error's detail, for
// the log. A Verifier is safe for concurrent use.
type Verifier struct {
	cfg      verifierConfig
	alg      string       // the algorithm bound to a static key; "" for key sets
	dsigAlg  string       // static key: alg as dsig names it
	key      any          // static key: the public key
	mac      *macVerifier // static HMAC key
	keys     jwk.Set      // key-set verifiers
	jwks     *jwksSource  // remote key sets
	required []string     // claims that must be present
	cache    *tokenCache  // nil when off
}

// VerifierOption configures a [Verifier].
type VerifierOption func(*verifierConfig)

type verifierConfig struct {
	issuer      string
	audience    string
	required    []string
	leeway      time.Duration
	maxLifetime time.Duration
	maxSize     int
	now         func() time.Time
	jwks        jwksConfig
	jwksOption  string // the name of a JWKS-only option given, for the error
	cacheSize   int    // of verified tokens; 0 is off
	subject     string // the claim that carries the subject
	err         error  // the first option refused, for the constructor
}

// refuse records that the option call refused its value; the constructor
// returns the first such error.
func (c *verifierConfig) refuse(call, why string) {
	if c.err == nil {
		c.err = fmt.Errorf("auth: %s: %s", call, why)
	}
}

// WithIssuer requires the iss claim to be iss. An empty iss is refused:
// leave the option out to accept any issuer.
func WithIssuer(iss string) VerifierOption {
	return func(c *verifierConfig) {
		if iss == "" {
			c.refuse(`WithIssuer("")`, "needs an issuer; leave the option out to accept any")
		}
		c.issuer = iss
	}
}

// WithAudience requires the aud claim to contain aud. An empty aud is
// refused: leave the option out to accept any audience.
func WithAudience(aud string) VerifierOption {
	return func(c *verifierConfig) {
		if aud == "" {
			c.refuse(`WithAudience("")`, "needs an audience; leave the option out to accept any")
		}
		c.audience = aud
	}
}

// WithRequiredClaims requires claims beyond exp and sub, which are always
// required. Only their presence is checked. No names adds nothing; an
// empty name is refused.
func WithRequiredClaims(names ...string) VerifierOption {
	return func(c *verifierConfig) {
		for _, n := range names {
			if n == "" {
				c.refuse(`WithRequiredClaims("")`, "needs a claim name")
			}
		}
		c.required = append(c.required, names...)
	}
}

// WithLeeway sets the clock skew allowed on exp, nbf and iat; the default
// is [DefaultLeeway]. Zero means none; a negative leeway is refused. A
// session closes at exp plus the leeway.
func WithLeeway(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		if d < 0 {
			c.refuse(fmt.Sprintf("WithLeeway(%v)", d), "must be >= 0 (0: no leeway)")
		}
		c.leeway = d
	}
}

// WithMaxLifetime refuses tokens whose exp - iat is over d (plus the
// leeway), and therefore requires iat: a stolen long-lived token is worth
// more than a short one, and the issuer's setting is not always ours.
// Zero means no maximum, as without the option; a negative d is refused.
func WithMaxLifetime(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		if d < 0 {
			c.refuse(fmt.Sprintf("WithMaxLifetime(%v)", d), "must be >= 0 (0: no maximum)")
		}
		c.maxLifetime = d
	}
}

// WithMaxTokenSize sets the largest token accepted, in bytes; the default
// is [DefaultMaxTokenSize]. Zero keeps the default; a negative size is
// refused.
func WithMaxTokenSize(n int) VerifierOption {
	return func(c *verifierConfig) {
		switch {
		case n < 0:
			c.refuse(fmt.Sprintf("WithMaxTokenSize(%d)", n), "must be >= 0 (0: the default)")
		case n > 0:
			c.maxSize = n
		}
	}
}

// WithVerifierClock sets the clock tokens are checked against; nil means
// time.Now. It is for tests of verification alone: sessions schedule
// their expiry on real timers, so a test of a session uses
// testing/synctest instead.
func WithVerifierClock(now func() time.Time) VerifierOption {
	return func(c *verifierConfig) { c.now = now }
}

// WithSubjectClaim names the claim that carries the subject, instead of
// "sub": for tokens minted as many tutorials do, {"user_id": 42, "exp":
// ...}. The claim is then required in place of sub; its value must be a
// non-empty string, or an integer written without a fraction or exponent,
// which becomes the subject as its decimal digits ("42"), exactly, however
// large. Any other value (42.5, 4.2e1, true, an object, null) makes the
// token invalid, and the log says why. A sub claim, if present, must
// still be a string but is no longer the subject. The name may not be
// another registered claim (iss, aud, exp, nbf, iat, jti): the
// constructors refuse it. The default is "sub".
func WithSubjectClaim(name string) VerifierOption {
	return func(c *verifierConfig) { c.subject = name }
}

func newVerifierConfig(opts []VerifierOption) (verifierConfig, error) {
	c := verifierConfig{
		leeway:    DefaultLeeway,
		maxSize:   DefaultMaxTokenSize,
		jwks:      defaultJWKSConfig(),
		cacheSize: DefaultVerifiedCacheSize,
		subject:   "sub",
	}
	for _, o := range opts {
		o(&c)
	}
	if c.err != nil {
		return c, c.err
	}
	if c.now == nil {
		c.now = time.Now
	}
	switch c.subject {
	case "":
		return c, errors.New("auth: WithSubjectClaim needs a claim name")
	case "iss", "aud", "exp", "nbf", "iat", "jti":
		return c, fmt.Errorf("auth: WithSubjectClaim(%q): the registered claim %s cannot carry the subject", c.subject, c.subject)
	}
	return c, nil
}

// noJWKSOptions refuses a JWKS-only option given to a verifier of a local
// key, where it would silently do nothing.
func (c *verifierConfig) noJWKSOptions() error {
	if c.jwksOption != "" {
		return fmt.Errorf("auth: %s applies to NewJWKSVerifier only", c.jwksOption)
	}
	return nil
}

// NewVerifier returns a verifier of tokens signed with key under alg, and
// only alg. key is the public key ([]byte of at least the hash size for
// HMAC: 32 bytes for HS256; an RSA key of at least 2048 bits for RS* and
// PS*; an ECDSA key on the algorithm's curve for ES*; an Ed25519 key for
// EdDSA and Ed25519). A private key is accepted and its public half used.
func NewVerifier(alg jwa.SignatureAlgorithm, key any, opts ...VerifierOption) (*Verifier, error) {
	cfg, err := newVerifierConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.noJWKSOptions(); err != nil {
		return nil, err
	}
	pub, err := checkKey(alg, key)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	v := &Verifier{alg: alg.String(), dsigAlg: dsigAlgorithms[alg.String()], key: pub}
	if newHash, ok := hmacHashes[v.alg]; ok {
		v.mac = newMACVerifier(newHash, pub.([]byte))
	}
	return newVerifier(cfg, v), nil
}

// NewHMACVerifier returns a verifier of HS256 tokens signed with secret,
// the common case of a service that shares one secret with its token
// issuer, without importing jwx's algorithm names. secret must be at
// least 32 bytes. It is NewVerifier(jwa.HS256(), secret, opts...).
func NewHMACVerifier(secret []byte, opts ...VerifierOption) (*Verifier, error) {
	return NewVerifier(jwa.HS256(), secret, opts...)
}

// NewKeySetVerifier returns a verifier of tokens signed with one of the
// keys of set. Each key must carry its algorithm ("alg") and key ID
// ("kid"); a token must name the key by kid and use that key's algorithm.
func NewKeySetVerifier(set jwk.Set, opts ...VerifierOption) (*Verifier, error) {
	cfg, err := newVerifierConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.noJWKSOptions(); err != nil {
		return nil, err
	}
	if err := checkKeySet(set); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return newVerifier(cfg, &Verifier{keys: set}), nil
}

// newVerifier completes v with its configuration and cache.
func newVerifier(cfg verifierConfig, v *Verifier) *Verifier {
	v.cfg = cfg
	v.required = append([]string{"exp", cfg.subject}, cfg.required...)
	if cfg.maxLifetime > 0 {
		v.required = append(v.required, "iat")
	}
	v.cache = newTokenCache(cfg.cacheSize)
	return v
}

func checkKeySet(set jwk.Set) error {
	if set == nil || set.Len() == 0 {
		return errors.New("empty key set")
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if _, ok := k.Algorithm(); !ok {
			return fmt.Errorf("key %d has no alg: the algorithm must come from the key, not the token", i)
		}
		if _, ok := k.KeyID(); !ok {
			return fmt.Errorf("key %d has no kid", i)
		}
	}
	return nil
}

// checkKey returns the public key to verify alg with, or why key does not
// fit alg.
func checkKey(alg jwa.SignatureAlgorithm, key any) (any, error) {
	switch name := alg.String(); name {
	case "HS256", "HS384", "HS512":
		b, ok := key.([]byte)
		if !ok {
			return nil, fmt.Errorf("%s needs a []byte key, not %T", name, key)
		}
		// RFC 7518 section 3.2: a key at least as long as the hash output.
		if need := hmacHashes[name]().Size(); len(b) < need {
			return nil, fmt.Errorf("%s needs a key of at least %d bytes, got %d", name, need, len(b))
		}
		return b, nil
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		var pub *rsa.PublicKey
		switch k := key.(type) {
		case *rsa.PublicKey:
			pub = k
		case *rsa.PrivateKey:
			pub = &k.PublicKey
		default:
			return nil, fmt.Errorf("%s needs an RSA key, not %T", name, key)
		}
		if pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%s needs an RSA key of at least %d bits, got %d", name, minRSABits, pub.N.BitLen())
		}
		return pub, nil
	case "ES256", "ES384", "ES512":
		var pub *ecdsa.PublicKey
		switch k := key.(type) {
		case *ecdsa.PublicKey:
			pub = k
		case *ecdsa.PrivateKey:
			pub = &k.PublicKey
		default:
			return nil, fmt.Errorf("%s needs an ECDSA key, not %T", name, key)
		}
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[name]
		if pub.Curve != curve {
			return nil, fmt.Errorf("%s needs a key on %s", name, curve.Params().Name)
		}
		return pub, nil
	case "EdDSA", "Ed25519":
		// crypto/ed25519 panics on a key of the wrong length.
		switch k := key.(type) {
		case ed25519.PublicKey:
			if len(k) == ed25519.PublicKeySize {
				return k, nil
			}
		case ed25519.PrivateKey:
			if len(k) == ed25519.PrivateKeySize {
				return k.Public(), nil
			}
		}
		return nil, fmt.Errorf("%s needs an Ed25519 key of the standard size, not this %T", name, key)
	default:
		return nil, fmt.Errorf("algorithm %s is not supported", quote(name))
	}
}

// dsigAlgorithms names the asymmetric algorithms [checkKey] accepts as
// dsig does: the table jwx's own jws package verifies with (RFC 7518
// section 3.1).
var dsigAlgorithms = map[string]string{
	"RS256": dsig.RSAPKCS1v15WithSHA256, "RS384": dsig.RSAPKCS1v15WithSHA384, "RS512": dsig.RSAPKCS1v15WithSHA512,
	"PS256": dsig.RSAPSSWithSHA256, "PS384": dsig.RSAPSSWithSHA384, "PS512": dsig.RSAPSSWithSHA512,
	"ES256": dsig.ECDSAWithP256AndSHA256, "ES384": dsig.ECDSAWithP384AndSHA384, "ES512": dsig.ECDSAWithP521AndSHA512,
	"EdDSA": dsig.EdDSA, "Ed25519": dsig.EdDSA,
}

// Verify checks t and returns whom it authenticates. ctx bounds a key-set
// refresh of a JWKS verifier; a local key needs no I/O. A token verified
// before is answered from the verified-token cache ([WithVerifiedCache])
// with the same result a full verification would give, in a [Principal]
// of the caller's own.
func (v *Verifier) Verify(ctx context.Context, t Token) (*Principal, error) {
	return v.verifyTo(ctx, t, nil)
}

// verifyTo is Verify, writing the principal into dst when dst is not nil
// and returning dst: a caller that holds the room for it, as a
// connection's session does, spares the handshake an allocation.
func (v *Verifier) verifyTo(ctx context.Context, t Token, dst *Principal) (*Principal, error) {
	switch {
	case t == "":
		return nil, invalidf("no token", nil)
	case len(t) > v.cfg.maxSize:
		return nil, invalidf("token too large", fmt.Errorf("%d bytes, over the cap of %d", len(t), v.cfg.maxSize))
	}
	var key digest
	if v.cache != nil {
		key = tokenDigest(t)
		if e := v.cache.get(key); e != nil {
			if v.stillValid(e, v.cfg.now()) {
				return e.p.cloneTo(dst), nil
			}
			// Verify in full, for the error an uncached token gets.
			v.cache.remove(e)
		}
	}
	if v.cache == nil {
		return v.verify(ctx, t, nil, dst)
	}
	e := &verified{key: key}
	p, err := v.verify(ctx, t, e, nil)
	if err != nil {
		return nil, err
	}
	v.cache.put(e)
	return p.cloneTo(dst), nil
}

// verify checks t in full and returns its principal, written into dst
// when dst is not nil, and records in e, when e is not nil, what the
// cache needs of it. Both are pointers, not values returned, to keep the
// frames small: they are on the stack of every handshake, which grows
// (copying it) whenever it runs short.
func (v *Verifier) verify(ctx context.Context, t Token, e *verified, dst *Principal) (*Principal, error) {
	parts, err := splitCompact(string(t))
	if err != nil {
		return nil, invalidf("malformed token", err)
	}
	if err := v.checkHeader(ctx, parts.header); err != nil {
		return nil, err
	}
	if v.alg == "" && e != nil {
		// Before parsing: should the set change in between, a hit sees
		// other keys than these and verifies again.
		e.kid, e.keys = parts.header.Kid, v.kidKeys(parts.header.Kid)
	}
	data, err := v.verifySignature(t, parts)
	if err != nil {
		return nil, err
	}
	c, err := decodeClaims(data)
	if err != nil {
		return nil, invalidf("malformed claims", err)
	}
	if v.cfg.subject != "sub" {
		if c.Subject, err = subjectClaim(c, data, v.cfg.subject); err != nil {
			return nil, invalidf("invalid subject claim", err)
		}
	}
	if err := v.checkClaims(c, v.cfg.now()); err != nil {
		return nil, err
	}
	p := newPrincipal(c, dst)
	if e != nil {
		e.p, e.exp, e.nbf, e.iat = p, c.exp, c.nbf, c.iat
	}
	return p, nil
}

// verifySignature verifies the signature of t, split as parts, and returns
// its decoded payload. A static key is checked on the parts splitCompact
// has decoded and checkHeader has bound to the key's algorithm: parsing
// them again is all that jws would add. An HMAC key is checked with
// crypto/hmac ([macVerifier]), any other with dsig, the signature library
// under jwx's jws package. A key set goes through jws.Verify, which picks
// the key by kid; it is told to require the header's alg to be the key's,
// which by default it does not check.
func (v *Verifier) verifySignature(t Token, parts compact) ([]byte, error) {
	if v.alg == "" {
		set := v.keys
		if v.jwks != nil {
			set = v.jwks.set
		}
		data, err := jws.Verify([]byte(t), jws.WithKeySet(set), jws.WithCompact(), jws.WithAlgorithmMatch(true))
		if err != nil {
			return nil, invalidf("bad signature", err)
		}
		return data, nil
	}
	if v.mac != nil {
		if !v.mac.verify(parts.signed, parts.signature) {
			return nil, invalidf("bad signature", errMACMismatch)
		}
		return parts.payload, nil
	}
	if err := dsig.Verify(v.key, v.dsigAlg, []byte(parts.signed), parts.signature); err != nil {
		return nil, invalidf("bad signature", err)
	}
	return parts.payload, nil
}

// checkHeader refuses what the key rules out before any signature work,
// and names it in the log: an unsigned token, another algorithm than the
// key's, a key-set token without a kid. For a JWKS verifier it fetches
// the key set again when kid is unknown.
func (v *Verifier) checkHeader(ctx context.Context, h header) error {
	if strings.EqualFold(h.Alg, "none") {
		return invalidf("unsigned token", errors.New(`alg "none"`))
	}
	if v.alg != "" {
		if h.Alg != v.alg {
			return invalidf("algorithm not allowed",
				fmt.Errorf("token says %s, the key is bound to %s", quote(h.Alg), v.alg))
		}
		return nil
	}
	if h.Kid == "" {
		return invalidf("no kid", errors.New("a key-set verifier needs the token to name its key"))
	}
	if v.jwks != nil {
		return v.jwks.lookup(ctx, h.Kid)
	}
	if _, ok := v.keys.LookupKeyID(h.Kid); !ok {
		return invalidf("unknown kid", fmt.Errorf("%s is not in the key set", quote(h.Kid)))
	}
	return nil
}

// header is the part of a JWS protected header read before verification.
// Crit and B64 are only looked at for their presence.
type header struct {
	Alg  string         `json:"alg"`
	Kid  string         `json:"kid"`
	Crit jsontext.Value `json:"crit"`
	B64  jsontext.Value `json:"b64"`
}

// compact is a token in the compact JWS form, split and decoded.
type compact struct {
	header    header
	signed    string // the signing input: header "." payload, encoded
	payload   []byte
	signature []byte
}

// b64 decodes the parts of a token: base64url without padding, and
// strict, so that a part has one encoding only.
var b64 = base64.RawURLEncoding.Strict()

// splitCompact checks that s has the compact form (three base64url parts,
// none empty) and decodes its header. jwx would also take the JSON form
// and an unsigned raw JWT; this profile takes neither. An unsigned token
// ("alg":"none", empty signature) gets as far as its header, so that the
// log can name it. The header is decoded as strictly as the claims (a
// duplicate "alg" is an error, not a choice), and one with "crit" or "b64"
// is refused: the profile knows no extension, and RFC 7515 section 4.1.11
// requires refusing a token that lists one the verifier does not
// understand.
func splitCompact(s string) (compact, error) {
	var c compact
	if n := strings.Count(s, "."); n != 2 {
		return c, fmt.Errorf("%d dot-separated parts, want 3", n+1)
	}
	i, j := strings.IndexByte(s, '.'), strings.LastIndexByte(s, '.')
	c.signed = s[:j]
	// The three parts share one buffer: one allocation, not three.
	buf := make([]byte, 0, b64.DecodedLen(len(s)))
	raw, err := decodePart(&buf, s[:i])
	if err != nil {
		return c, fmt.Errorf("header: %w", err)
	}
	h := &c.header
	if err := json.Unmarshal(raw, h); err != nil {
		return c, fmt.Errorf("header: %w", err)
	}
	switch {
	case strings.EqualFold(h.Alg, "none"):
		return c, nil
	case h.Alg == "":
		return c, errors.New("header has no alg")
	case len(h.Crit) > 0 || len(h.B64) > 0:
		return c, errors.New(`header has "crit" or "b64": no extension is supported`)
	}
	if c.payload, err = decodePart(&buf, s[i+1:j]); err != nil {
		return c, fmt.Errorf("payload: %w", err)
	}
	if c.signature, err = decodePart(&buf, s[j+1:]); err != nil {
		return c, fmt.Errorf("signature: %w", err)
	}
	return c, nil
}

// decodePart decodes one part of a compact token, which has one encoding
// only: base64url without padding (the strict decoder refuses any other
// character, and stray bits in the last one), and none of the CR and LF
// that encoding/base64 skips even when strict. jws would decode a
// key-set token's parts more leniently, so that one signed token had many
// spellings. The part is decoded at the end of *buf, which has room for
// it, and *buf grows by it.
func decodePart(buf *[]byte, p string) ([]byte, error) {
	if p == "" || strings.IndexByte(p, '\r') >= 0 || strings.IndexByte(p, '\n') >= 0 {
		return nil, errors.New("empty or not base64url")
	}
	b := *buf
	dst := b[len(b) : len(b)+b64.DecodedLen(len(p))]
	n, err := b64.Decode(dst, []byte(p))
	if err != nil {
		return nil, err
	}
	*buf = b[:len(b)+n]
	return dst[:n:n], nil
}

// invalidf returns an Unauthenticated error with the public text "invalid
// token" and the reason, followed by err when there is one, as its detail.
func invalidf(reason string, err error) error {
	if err == nil {
		err = errors.New(reason)
	} else {
		err = fmt.Errorf("%s: %w", reason, err)
	}
	return errlog.NewPublicError(errlog.Unauthenticated, textInvalid, err)
}

// quote quotes a string taken from a token for an error's detail, escaped
// and bounded as errlog.Untrusted logs it.
func quote(s string) string { return `"` + errlog.Escape(s) + `"` }
