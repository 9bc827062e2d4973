package wsguard

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/wsguard/kit/errlog"
)

// IPFilter admits or refuses requests by client IP ([ClientIP]), so put
// [RealIP] in front of it when there are proxies.
type IPFilter struct {
	allow []netip.Prefix
	deny  []netip.Prefix
}

// NewIPFilter returns a filter over allow and deny lists of IP addresses
// and CIDR prefixes. Deny wins over allow; an empty allow list allows every
// address not denied. A refused request is errlog.PermissionDenied (HTTP
// 403). An entry that does not parse, or a prefix with host bits set, is an
// error.
func NewIPFilter(allow, deny []string) (*IPFilter, error) {
	f := &IPFilter{}
	var err error
	if f.allow, err = parsePrefixes(allow); err != nil {
		return nil, fmt.Errorf("wsguard: IP allow list: %w", err)
	}
	if f.deny, err = parsePrefixes(deny); err != nil {
		return nil, fmt.Errorf("wsguard: IP deny list: %w", err)
	}
	return f, nil
}

// Check returns nil when the client IP of r is admitted. A request whose
// client IP is unknown is refused: a filter that cannot tell who is asking
// cannot say yes.
func (f *IPFilter) Check(r *http.Request) error {
	ip := ClientIP(r)
	switch {
	case !ip.IsValid():
		return errlog.NewError(errlog.PermissionDenied, errors.New("client IP unknown"))
	case prefixesContain(f.deny, ip):
		return errlog.NewError(errlog.PermissionDenied, fmt.Errorf("client IP %s is denied", ip))
	case len(f.allow) > 0 && !prefixesContain(f.allow, ip):
		return errlog.NewError(errlog.PermissionDenied, fmt.Errorf("client IP %s is not allowed", ip))
	}
	return nil
}

// Handler rejects requests that [IPFilter.Check] refuses, with [Reject].
func (f *IPFilter) Handler(h http.Handler) http.Handler {
	return admitHandler(f.admit, h)
}

// admit is the Handler's decision, which a Server makes in line: false
// when the request was refused.
func (f *IPFilter) admit(w http.ResponseWriter, r *http.Request) bool {
	if err := f.Check(r); err != nil {
		refuse(w, r, "", err)
		return false
	}
	return true
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := parseIPOrPrefix(s)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func prefixesContain(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
