package wsguard

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/wsguard/kit/errlog"
)

// Bounds on X-Forwarded-For. A real chain has a handful of proxies; these
// leave room for many more while keeping the work per request small.
const (
	maxForwardedHops  = 32
	maxForwardedBytes = 4 << 10
)

// RealIP resolves the IP address of the client behind trusted reverse
// proxies.
//
// Trust model: anyone can send X-Forwarded-For, so only the entries that
// proxies you run appended are facts. RealIP reads the header only when the
// TCP peer (r.RemoteAddr) is a trusted proxy, and walks it from the right,
// the end each proxy appends to, skipping trusted proxies. The first address
// that is not a trusted proxy is the client; the entries left of it are that
// client's own claims and are not even parsed. When every hop is a trusted
// proxy, the leftmost is the client. A request whose peer is not a trusted
// proxy is the peer's, whatever its headers say. Each trusted proxy must
// therefore append the address it received the request from (nginx
// $proxy_add_x_forwarded_for, the default of most load balancers) rather than
// pass the header through or replace it with a client-supplied one. The
// Forwarded (RFC 7239) and X-Real-IP headers are not read.
//
// RealIP fails closed. An entry it has to read that is not an IP address
// (optionally with a port), or a header of more than 32 entries or 4 KiB,
// refuses the request as errlog.PolicyViolation (HTTP 400) instead of
// guessing. A RemoteAddr that is not an IP address (a Unix socket listener)
// is errlog.Internal: the server, not the client, is misconfigured.
//
// Addresses are returned unmapped (::ffff:192.0.2.1 is 192.0.2.1) and
// without an IPv6 zone, so that one client has one key.
type RealIP struct {
	trusted []netip.Prefix
}

// NewRealIP returns a RealIP trusting the given proxies, each an IP address
// ("10.0.0.7", "::1") or a CIDR prefix ("10.0.0.0/8"). With no trusted
// proxies the client is always the TCP peer. An entry that does not parse,
// or a prefix with host bits set ("10.0.0.1/8", a likely typo), is an error.
func NewRealIP(trustedProxies []string) (*RealIP, error) {
	trusted, err := parsePrefixes(trustedProxies)
	if err != nil {
		return nil, fmt.Errorf("wsguard: trusted proxy: %w", err)
	}
	return &RealIP{trusted: trusted}, nil
}

// IP returns the client IP of r under the trust model of [RealIP].
func (p *RealIP) IP(r *http.Request) (netip.Addr, error) {
	peer, err := parseRemoteAddr(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, errlog.NewError(errlog.Internal, err)
	}
	if !p.trusts(peer) {
		return peer, nil
	}
	values := r.Header.Values("X-Forwarded-For")
	size, hops := 0, 0
	for _, v := range values {
		size += len(v)
		hops += strings.Count(v, ",") + 1
	}
	if size > maxForwardedBytes {
		return netip.Addr{}, errlog.NewError(errlog.PolicyViolation,
			fmt.Errorf("X-Forwarded-For of %d bytes is over %d", size, maxForwardedBytes))
	}
	if hops > maxForwardedHops {
		return netip.Addr{}, errlog.NewError(errlog.PolicyViolation,
			fmt.Errorf("X-Forwarded-For of %d entries is over %d", hops, maxForwardedHops))
	}
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for {
			j := strings.LastIndexByte(rest, ',')
			a, err := parseForwardedFor(rest[j+1:])
			if err != nil {
				return netip.Addr{}, errlog.NewError(errlog.PolicyViolation, err)
			}
			if !p.trusts(a) {
				return a, nil
			}
			client = a
			if j < 0 {
				break
			}
			rest = rest[:j]
		}
	}
	return client, nil
}

// Check reports whether the client IP of r can be resolved.
func (p *RealIP) Check(r *http.Request) error {
	_, err := p.IP(r)
	return err
}

// Handler resolves the client IP and stores it in the request context for
// [ClientIP], so that the guards after it (and h) see the client rather than
// the proxy. A request whose IP cannot be resolved is rejected with
// [Reject].
func (p *RealIP) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := p.admit(w, r); ok {
			h.ServeHTTP(w, r)
		}
	})
}

// admit is the Handler's decision, which a Server makes in line: r with
// the client IP in its context, or false when the request was refused.
func (p *RealIP) admit(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	ip, ok := p.resolve(w, r)
	if !ok {
		return r, false
	}
	return r.WithContext(WithClientIP(r.Context(), ip)), true
}

// resolve returns the client IP of r, or answers the refusal and returns
// false.
func (p *RealIP) resolve(w http.ResponseWriter, r *http.Request) (netip.Addr, bool) {
	ip, err := p.IP(r)
	if err != nil {
		refuse(w, r, "", err)
		return ip, false
	}
	return normalizeAddr(ip), true
}

func (p *RealIP) trusts(a netip.Addr) bool {
	return prefixesContain(p.trusted, a)
}

type clientIPKey struct{}

// WithClientIP returns a copy of ctx carrying ip as the client IP that
// [ClientIP] reports, for a server that resolved it by other means.
func WithClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, clientIPKey{}, normalizeAddr(ip))
}

// ClientIP returns the client IP of r: the one stored by [RealIP.Handler]
// or [WithClientIP], else the IP of r.RemoteAddr, else (a Unix socket, a
// hand-made request) the zero netip.Addr. The per-IP guards key on it, so
// put RealIP in front of them when there are proxies.
func ClientIP(r *http.Request) netip.Addr {
	switch ip := r.Context().Value(clientIPKey{}).(type) {
	case netip.Addr:
		return ip
	case *netip.Addr: // a Server's (see handshake): no copy in an interface
		return *ip
	}
	ip, _ := parseRemoteAddr(r.RemoteAddr)
	return ip
}

// parseRemoteAddr parses r.RemoteAddr, which net/http sets to "ip:port";
// a bare IP is accepted for requests built by hand.
func parseRemoteAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalizeAddr(ap.Addr()), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalizeAddr(a), nil
	}
	return netip.Addr{}, fmt.Errorf("RemoteAddr %s is not an IP address", quoteUntrusted(s))
}

// parseForwardedFor parses one X-Forwarded-For entry: an IP address, with a
// port as some load balancers add it, and optional whitespace around.
func parseForwardedFor(s string) (netip.Addr, error) {
	s = strings.Trim(s, " \t")
	if a, err := netip.ParseAddr(s); err == nil {
		return normalizeAddr(a), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalizeAddr(ap.Addr()), nil
	}
	return netip.Addr{}, fmt.Errorf("X-Forwarded-For entry %s is not an IP address", quoteUntrusted(s))
}

// parseIPOrPrefix parses an allow, deny or trusted-proxy entry.
func parseIPOrPrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		a = normalizeAddr(a)
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	// Client IPs are unmapped, so a prefix inside ::ffff:0:0/96 must be too,
	// or it would match nothing.
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

func normalizeAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}
