package auth

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/wsguard/kit/errlog"
)

// maxNumericDate is the largest exp, nbf or iat accepted: the last second
// of the year 9999. A NumericDate beyond it is no date an issuer means.
const maxNumericDate = 253402300799

// payload is a token's claims set as the profile reads it, once the
// signature is verified. The decoder is json v2's with its defaults, which
// are strict where a claims set must be: a duplicate claim (which of two
// "sub" members would a downstream parser take?) and invalid UTF-8 are
// errors, names match case-sensitively, and a registered claim that is
// null or of the wrong JSON type (an exp that is a string) is refused
// instead of converted or taken for absent.
type payload struct {
	Subject   claim[string]      `json:"sub"`
	Issuer    claim[string]      `json:"iss"`
	Audience  claim[audience]    `json:"aud"`
	Expiry    claim[numericDate] `json:"exp"`
	NotBefore claim[numericDate] `json:"nbf"`
	IssuedAt  claim[numericDate] `json:"iat"`
	ID        claim[string]      `json:"jti"`
	Private   map[string]any     `json:",embed"`
}

// claim is a registered claim: its value, and whether it is present.
type claim[T any] struct {
	v   T
	set bool
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom; json v2 calls it for
// null too, which a registered claim may not be.
func (c *claim[T]) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if d.PeekKind() == jsontext.KindNull {
		return errors.New("a registered claim must not be null")
	}
	c.set = true
	return json.UnmarshalDecode(d, &c.v)
}

// audience is the aud claim: one string, or an array of them (RFC 7519
// section 4.1.3).
type audience []string

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (a *audience) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if d.PeekKind() == '"' {
		var s string
		if err := json.UnmarshalDecode(d, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	// Elements as claims, so that a null one is refused, not read as "".
	var list []claim[string]
	if err := json.UnmarshalDecode(d, &list); err != nil {
		return err
	}
	*a = make(audience, len(list))
	for i, e := range list {
		(*a)[i] = e.v
	}
	return nil
}

// claims are a token's claims, decoded and typed.
type claims struct {
	payload
	exp, nbf, iat time.Time // zero when absent
}

// numericDate is a NumericDate claim (RFC 7519 section 2): a JSON number
// of seconds since 1970, here read to the whole second, as jwx reads it.
type numericDate int64

// UnmarshalJSON implements json.Unmarshaler.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errors.New("a NumericDate must be a JSON number")
	}
	n, ok := seconds(string(b))
	if !ok || n > maxNumericDate {
		return errors.New("a NumericDate must be between 0 and the end of the year 9999")
	}
	*d = numericDate(n)
	return nil
}

// seconds returns the whole seconds of the JSON number s, and whether s
// is not negative. Without an exponent they are read from the digits: a
// float64 would round a date with a fraction up to the next second when
// it ends in enough nines. With one, through a float64, as jwx reads it.
func seconds(s string) (int64, bool) {
	if strings.HasPrefix(s, "-") {
		return 0, false
	}
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		return int64(f), err == nil && f < maxNumericDate+1
	}
	s, _, _ = strings.Cut(s, ".")
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// dateOf returns the time of a NumericDate claim; the zero time when it
// is absent.
func dateOf(c claim[numericDate]) time.Time {
	if !c.set {
		return time.Time{}
	}
	return time.Unix(int64(c.v), 0).UTC()
}

// decodeClaims decodes a verified token's payload.
func decodeClaims(data []byte) (*claims, error) {
	c := &claims{}
	if err := json.Unmarshal(data, &c.payload); err != nil {
		return nil, err
	}
	c.exp, c.nbf, c.iat = dateOf(c.Expiry), dateOf(c.NotBefore), dateOf(c.IssuedAt)
	return c, nil
}

// subjectClaim returns the subject a token's private claim name carries,
// unset when the claim is absent. A string is read as decoded; a number
// from the payload's text (data), which decodeClaims has found valid and
// free of duplicate members, since a float64 holds integers exactly only
// up to 2^53 and would make two users' IDs one subject.
func subjectClaim(c *claims, data []byte, name string) (claim[string], error) {
	switch v := c.Private[name].(type) {
	case nil:
		if _, ok := c.Private[name]; !ok {
			return claim[string]{}, nil
		}
		return claim[string]{}, fmt.Errorf("%s is null: the subject must be a string or an integer", quote(name))
	case string:
		return claim[string]{v: v, set: true}, nil
	case float64:
		n, err := memberText(data, name)
		if err != nil {
			return claim[string]{}, err
		}
		if strings.ContainsAny(n, ".eE") {
			return claim[string]{}, fmt.Errorf("%s is %s: the subject must be a string or an integer, not a number with a fraction or exponent",
				quote(name), quote(n))
		}
		if n == "-0" {
			n = "0"
		}
		return claim[string]{v: n, set: true}, nil
	case bool:
		return claim[string]{}, fmt.Errorf("%s is a boolean: the subject must be a string or an integer", quote(name))
	case []any:
		return claim[string]{}, fmt.Errorf("%s is an array: the subject must be a string or an integer", quote(name))
	default:
		return claim[string]{}, fmt.Errorf("%s is an object: the subject must be a string or an integer", quote(name))
	}
}

// memberText returns the raw text of the top-level member name of the JSON
// object data.
func memberText(data []byte, name string) (string, error) {
	d := jsontext.NewDecoder(bytes.NewReader(data))
	if _, err := d.ReadToken(); err != nil {
		return "", err
	}
	for d.PeekKind() == '"' {
		n, err := d.ReadToken()
		if err != nil {
			return "", err
		}
		// A token is valid only until the next read.
		found := n.String() == name
		v, err := d.ReadValue()
		if err != nil {
			return "", err
		}
		if found {
			return string(v), nil
		}
	}
	return "", fmt.Errorf("%s not found", quote(name))
}

// has reports whether the claim name is present.
func (c *claims) has(name string) bool {
	switch name {
	case "sub":
		return c.Subject.set
	case "iss":
		return c.Issuer.set
	case "aud":
		return c.Audience.set
	case "exp":
		return c.Expiry.set
	case "nbf":
		return c.NotBefore.set
	case "iat":
		return c.IssuedAt.set
	case "jti":
		return c.ID.set
	}
	_, ok := c.Private[name]
	return ok
}

// checkClaims applies the profile to a verified token's claims at now.
func (v *Verifier) checkClaims(c *claims, now time.Time) error {
	for _, name := range v.required {
		if !c.has(name) {
			return invalidf("missing claim", fmt.Errorf("%s is required", quote(name)))
		}
	}
	if c.Subject.v == "" {
		return invalidf("empty subject", nil)
	}
	if err := v.checkTimes(c.exp, c.nbf, c.iat, now); err != nil {
		return err
	}
	if v.cfg.issuer != "" && c.Issuer.v != v.cfg.issuer {
		return invalidf("wrong issuer", nil)
	}
	if v.cfg.audience != "" && !slices.Contains(c.Audience.v, v.cfg.audience) {
		return invalidf("wrong audience", nil)
	}
	if d := v.cfg.maxLifetime; d > 0 && c.exp.Sub(c.iat) > d+v.cfg.leeway {
		return invalidf("invalid claims", fmt.Errorf("lifetime %s is over the maximum of %s", c.exp.Sub(c.iat), d))
	}
	return nil
}

// checkTimes checks a token's exp and, when not zero, its nbf and iat at
// now with the verifier's leeway. A full verification and a hit in the
// verified-token cache both check times here, so they cannot disagree.
func (v *Verifier) checkTimes(exp, nbf, iat, now time.Time) error {
	lw := v.cfg.leeway
	switch {
	case !now.Before(exp.Add(lw)):
		return errlog.NewPublicError(errlog.Unauthenticated, textExpired,
			fmt.Errorf("expired: exp %s + leeway %s", exp.Format(time.RFC3339), lw))
	case !nbf.IsZero() && now.Before(nbf.Add(-lw)):
		return invalidf("not yet valid", nil)
	case !iat.IsZero() && now.Before(iat.Add(-lw)):
		return invalidf("issued in the future", nil)
	}
	return nil
}
