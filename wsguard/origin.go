package wsguard

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"

	"github.com/wsguard/kit/errlog"
)

// OriginCheck refuses cross-origin handshakes from browsers, the defence
// against cross-site WebSocket hijacking (CVE-2020-28481): a browser sends
// cookies with a WebSocket handshake from any page, and only the Origin
// header tells the server which site's page opened it.
//
// The rules are those of coder/websocket's Accept:
//
//   - no Origin header: allowed, as the client is not a browser (browsers
//     always send one with a WebSocket handshake), so no victim's cookies
//     are at stake;
//   - an Origin whose host equals the request's Host (ignoring case):
//     allowed;
//   - otherwise the Origin's host ("app.example.com:8443"), or its
//     scheme://host when the pattern contains "://", must match one of the
//     patterns (ignoring case).
//
// A pattern is [scheme "://"] host [":" port]. Its only wildcard is "*",
// and only as a whole part: whole leading labels of the host
// ("*.example.com", which matches any name under example.com and not
// example.com itself), the whole port ("localhost:*") or the whole scheme
// ("*://app.example.com"). Every other label is letters, digits, "-" and
// "_"; an IPv6 host is written escaped ("\[::1\]:8080"). A wildcard that
// could run into a label ("*example.com", which matches
// evilexample.com) is refused by [NewOriginCheck].
//
// Stricter than coder/websocket: "null" (the opaque origin of sandboxed
// frames and file: pages, which any site can produce), an Origin that is not
// exactly scheme://host[:port], and more than one Origin header are refused.
// A refused request is errlog.PermissionDenied (HTTP 403).
type OriginCheck struct {
	patterns []string // lower-cased
}

// originProbes are hosts no deployment owns: a pattern matching one of them
// would admit pages of unrelated sites, so NewOriginCheck refuses it.
var originProbes = []string{
	"wsguard-probe.invalid", "wsguard-probe.invalid:8443",
	"wsguard-probe.com", "wsguard-probe.net", "wsguard-probe.org",
	"wsguard-probe.io", "wsguard-probe.dev", "wsguard-probe.app",
	"192.0.2.1", "192.0.2.1:8443", "[2001:db8::1]", "[2001:db8::1]:8443",
}

// NewOriginCheck returns a check admitting, beside same-host pages and
// non-browser clients, the Origins matching the patterns: hosts such as
// "app.example.com", "*.example.com" or "localhost:*", or scheme://host
// such as "https://app.example.com" to bind the scheme too.
//
// A malformed pattern (path.ErrBadPattern) is an error, and so is one
// whose wildcard does not stop at a label boundary ("*example.com",
// "app.*", "app?.example.com", "[a-z]*.example.com"; see [OriginCheck])
// and one that admits unrelated sites ("*", "*.*", "*:*", "https://*",
// "*.com"): a
// deployment that really accepts every origin does not install the check,
// which the server names InsecureSkipOriginCheck so that it is seen in
// review.
func NewOriginCheck(patterns []string) (*OriginCheck, error) {
	c := &OriginCheck{}
	for _, p := range patterns {
		lp := strings.ToLower(p)
		if lp == "" {
			return nil, errors.New("wsguard: empty origin pattern")
		}
		if _, err := path.Match(lp, ""); err != nil {
			return nil, fmt.Errorf("wsguard: origin pattern %q: %w", p, err)
		}
		if err := checkPatternShape(lp); err != nil {
			return nil, fmt.Errorf("wsguard: origin pattern %q: %w", p, err)
		}
		if probe, ok := admitsUnrelated(lp); ok {
			return nil, fmt.Errorf("wsguard: origin pattern %q admits unrelated sites such as %q", p, probe)
		}
		c.patterns = append(c.patterns, lp)
	}
	return c, nil
}

// checkPatternShape refuses a lower-cased pattern whose wildcard is not a
// whole part (see [OriginCheck]): path.Match's "*" runs over dots, so
// "*example.com" would admit evilexample.com.
func checkPatternShape(p string) error {
	rest := p
	if scheme, after, ok := strings.Cut(p, "://"); ok {
		if scheme != "*" && !isScheme(scheme) {
			return errors.New(`the scheme must be letters, digits, "+", "-" and "." or a whole "*"`)
		}
		rest = after
	}
	if ip, after, ok := strings.Cut(strings.TrimPrefix(rest, `\[`), `\]`); ok && strings.HasPrefix(rest, `\[`) {
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%q is not an IPv6 address", ip)
		}
		if after == "" {
			return nil
		}
		if after[0] != ':' {
			return errors.New("only a port may follow an IPv6 host")
		}
		return checkPort(after[1:])
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		if err := checkPort(rest[i+1:]); err != nil {
			return err
		}
		host = rest[:i]
	}
	named := 0
	for l := range strings.SplitSeq(host, ".") {
		switch {
		case l == "*" && named == 0:
		case isLabel(l):
			named++
		case strings.ContainsAny(l, "*?[]\\"):
			return errors.New(`a wildcard must be one or more whole labels at the start of the host, as in "*.example.com"`)
		default:
			return fmt.Errorf(`host label %q is not letters, digits, "-" and "_"`, l)
		}
	}
	if named == 0 {
		return errors.New("the host has no label without a wildcard")
	}
	return nil
}

func checkPort(s string) error {
	if s == "*" || s != "" && len(s) <= 5 && strings.Trim(s, "0123456789") == "" {
		return nil
	}
	return errors.New(`the port must be 1 to 5 digits or a whole "*"`)
}

func isScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '+' || b == '-' || b == '.') {
			return false
		}
	}
	return true
}

func isLabel(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// admitsUnrelated reports whether the lower-cased pattern p matches one of
// the originProbes, and which.
func admitsUnrelated(p string) (string, bool) {
	schemes := []string{""}
	if strings.Contains(p, "://") {
		schemes = []string{"http://", "https://"}
	}
	for _, s := range schemes {
		for _, probe := range originProbes {
			if ok, _ := path.Match(p, s+probe); ok {
				return s + probe, true
			}
		}
	}
	return "", false
}

// Check returns nil when r's Origin is admitted.
func (c *OriginCheck) Check(r *http.Request) error {
	values := r.Header.Values("Origin")
	switch {
	case len(values) == 0 || len(values) == 1 && values[0] == "":
		return nil
	case len(values) > 1:
		return errlog.NewError(errlog.PermissionDenied, errors.New("more than one Origin header"))
	}
	origin := values[0]
	if origin == "null" {
		return errlog.NewError(errlog.PermissionDenied, errors.New(`opaque Origin "null"`))
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Scheme+"://"+u.Host != origin {
		return errlog.NewError(errlog.PermissionDenied,
			fmt.Errorf("origin %s is not scheme://host[:port]", quoteUntrusted(origin)))
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	host := strings.ToLower(u.Host)
	for _, p := range c.patterns {
		target := host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + host
		}
		if ok, _ := path.Match(p, target); ok {
			return nil
		}
	}
	return errlog.NewError(errlog.PermissionDenied,
		fmt.Errorf("origin %s is not allowed for host %s", quoteUntrusted(origin), quoteUntrusted(r.Host)))
}

// Handler rejects requests that [OriginCheck.Check] refuses, with [Reject].
func (c *OriginCheck) Handler(h http.Handler) http.Handler {
	return admitHandler(c.admit, h)
}

// admit is the Handler's decision, which a Server makes in line: false
// when the request was refused.
func (c *OriginCheck) admit(w http.ResponseWriter, r *http.Request) bool {
	if err := c.Check(r); err != nil {
		refuse(w, r, "", err)
		return false
	}
	return true
}
