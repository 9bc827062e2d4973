package wsguard_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

var realIPTrusted = []string{"10.0.0.0/8", "192.168.0.1", "2001:db8:1::/48", "::ffff:172.16.0.0/108"}

func TestNewRealIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted []string
		wantErr bool
	}{
		{"none", nil, false},
		{"IPs and prefixes", realIPTrusted, false},
		{"zoned IP", []string{"fe80::1%eth0"}, false},
		{"empty entry", []string{""}, true},
		{"hostname", []string{"proxy.internal"}, true},
		{"padded", []string{" 10.0.0.1"}, true},
		{"host bits set", []string{"10.0.0.1/8"}, true},
		{"prefix too long", []string{"10.0.0.0/33"}, true},
		{"IPv6 prefix too long", []string{"::1/129"}, true},
		{"one bad among good", []string{"10.0.0.0/8", "nope"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := wsguard.NewRealIP(tt.trusted)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewRealIP(%q) error = %v, wantErr %v", tt.trusted, err, tt.wantErr)
			}
		})
	}
}

func TestRealIPIP(t *testing.T) {
	t.Parallel()
	p, err := wsguard.NewRealIP(realIPTrusted)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		xff    []string // one element per header line
		want   string
		code   errlog.Code // 0: no error
	}{
		{"untrusted peer, no header", "203.0.113.5:1234", nil, "203.0.113.5", 0},
		{"untrusted peer's header is ignored", "203.0.113.5:1234", []string{"198.51.100.7"}, "203.0.113.5", 0},
		{"untrusted peer's malformed header is ignored", "203.0.113.5:1234", []string{"garbage"}, "203.0.113.5", 0},
		{"bare IP remote", "203.0.113.5", nil, "203.0.113.5", 0},
		{"trusted peer, no header", "10.0.0.1:80", nil, "10.0.0.1", 0},
		{"trusted peer, one hop", "10.0.0.1:80", []string{"198.51.100.7"}, "198.51.100.7", 0},
		{"client's own claims left of it are ignored", "10.0.0.1:80", []string{"1.1.1.1, 198.51.100.7, 10.0.0.2"}, "198.51.100.7", 0},
		{"client's malformed claims are ignored", "10.0.0.1:80", []string{"unknown, garbage,198.51.100.7"}, "198.51.100.7", 0},
		{"single trusted IP", "192.168.0.1:80", []string{"198.51.100.7, 192.168.0.1"}, "198.51.100.7", 0},
		{"neighbour of single trusted IP is not trusted", "192.168.0.1:80", []string{"198.51.100.7, 192.168.0.2"}, "192.168.0.2", 0},
		{"all trusted: leftmost", "10.0.0.1:80", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3", 0},
		{"header lines walked last first", "10.0.0.1:80", []string{"1.1.1.1", "198.51.100.7, 10.0.0.2"}, "198.51.100.7", 0},
		{"walk crosses header lines", "10.0.0.1:80", []string{"198.51.100.7", "10.0.0.2"}, "198.51.100.7", 0},
		{"entry with port", "10.0.0.1:80", []string{"198.51.100.7:4711"}, "198.51.100.7", 0},
		{"IPv6 entry with port", "10.0.0.1:80", []string{"[2001:db8:2::1]:443"}, "2001:db8:2::1", 0},
		{"whitespace", "10.0.0.1:80", []string{" 198.51.100.7\t,\t10.0.0.2 "}, "198.51.100.7", 0},
		{"mapped entry is unmapped", "10.0.0.1:80", []string{"::ffff:198.51.100.7"}, "198.51.100.7", 0},
		{"mapped peer is trusted", "[::ffff:10.0.0.1]:80", []string{"198.51.100.7"}, "198.51.100.7", 0},
		{"mapped trusted prefix", "172.16.0.9:80", []string{"198.51.100.7"}, "198.51.100.7", 0},
		{"mapped trusted entry is skipped", "10.0.0.1:80", []string{"198.51.100.7, ::ffff:10.0.0.2"}, "198.51.100.7", 0},
		{"zone is stripped", "10.0.0.1:80", []string{"fe80::1%eth0"}, "fe80::1", 0},
		{"zoned remote", "[fe80::1%eth0]:80", nil, "fe80::1", 0},
		{"IPv6 proxy", "[2001:db8:1::5]:443", []string{"2001:db8:2::9, 2001:db8:1::6"}, "2001:db8:2::9", 0},
		{"32 entries", "10.0.0.1:80", []string{strings.Repeat("10.0.0.9,", 31) + "10.0.0.9"}, "10.0.0.9", 0},

		{"malformed among trusted", "10.0.0.1:80", []string{"198.51.100.7, bogus, 10.0.0.2"}, "", errlog.PolicyViolation},
		{"unknown", "10.0.0.1:80", []string{"unknown"}, "", errlog.PolicyViolation},
		{"hostname", "10.0.0.1:80", []string{"client.example.com"}, "", errlog.PolicyViolation},
		{"empty entry", "10.0.0.1:80", []string{"198.51.100.7,,10.0.0.2"}, "", errlog.PolicyViolation},
		{"empty header line", "10.0.0.1:80", []string{""}, "", errlog.PolicyViolation},
		{"trailing comma", "10.0.0.1:80", []string{"198.51.100.7,"}, "", errlog.PolicyViolation},
		{"control character", "10.0.0.1:80", []string{"198.51.100.7\n"}, "", errlog.PolicyViolation},
		{"33 entries", "10.0.0.1:80", []string{strings.Repeat("10.0.0.9,", 32) + "10.0.0.9"}, "", errlog.PolicyViolation},
		{"33 entries over lines", "10.0.0.1:80", strings.Split(strings.Repeat("10.0.0.9,", 32)+"10.0.0.9", ","), "", errlog.PolicyViolation},
		{"over 4 KiB", "10.0.0.1:80", []string{strings.Repeat(" ", 4<<10) + "198.51.100.7"}, "", errlog.PolicyViolation},
		{"unix socket remote", "@", nil, "", errlog.Internal},
		{"empty remote", "", nil, "", errlog.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := guardRequest(tt.remote)
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, err := p.IP(r)
			if tt.code != 0 {
				if c := errlog.CodeOf(err); c != tt.code {
					t.Fatalf("IP() = %v, %v; want code %v", got, err, tt.code)
				}
				if got.IsValid() {
					t.Errorf("IP() = %v with an error, want the zero Addr", got)
				}
				if cerr := p.Check(r); errlog.CodeOf(cerr) != tt.code {
					t.Errorf("Check() = %v, want code %v", cerr, tt.code)
				}
				return
			}
			if err != nil || got != mustAddr(t, tt.want) {
				t.Fatalf("IP() = %v, %v; want %s", got, err, tt.want)
			}
			if err := p.Check(r); err != nil {
				t.Errorf("Check() = %v", err)
			}
		})
	}
}

func TestRealIPHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		xff        string
		wantStatus int
		wantIP     string
	}{
		{"resolved IP reaches the handler", "198.51.100.7", http.StatusNoContent, "198.51.100.7"},
		{"malformed header is rejected", "bogus", http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, l := newGuardLog()
			p, err := wsguard.NewRealIP([]string{"10.0.0.0/8"})
			if err != nil {
				t.Fatal(err)
			}
			var seen netip.Addr
			h := wsguard.Instrument(l, nil)(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = wsguard.ClientIP(r)
				w.WriteHeader(http.StatusNoContent)
			})))
			r := guardRequest("10.0.0.1:80")
			r.Header.Set("X-Forwarded-For", tt.xff)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)

			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantIP == "" {
				if seen.IsValid() {
					t.Error("the handler ran for a rejected request")
				}
				if got := w.Body.String(); got != "policy violation" {
					t.Errorf("body = %q", got)
				}
				line := log.oneLine(t)
				if line[errlog.KeyCode] != "policy_violation" || line[errlog.KeyRemote] != "10.0.0.1" {
					t.Errorf("log line = %v", line)
				}
				return
			}
			if seen != mustAddr(t, tt.wantIP) {
				t.Errorf("ClientIP in the handler = %v, want %s", seen, tt.wantIP)
			}
			if got := log.String(); got != "" {
				t.Errorf("an admitted request logged %q", got)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remote string
		ctxIP  string // set with WithClientIP when not empty
		want   string // "" is the zero Addr
	}{
		{"from RemoteAddr", "198.51.100.7:4711", "", "198.51.100.7"},
		{"IPv6 RemoteAddr", "[2001:db8::1]:4711", "", "2001:db8::1"},
		{"mapped RemoteAddr", "[::ffff:198.51.100.7]:4711", "", "198.51.100.7"},
		{"context wins", "10.0.0.1:80", "203.0.113.9", "203.0.113.9"},
		{"context is normalized", "10.0.0.1:80", "::ffff:203.0.113.9", "203.0.113.9"},
		{"invalid RemoteAddr", "@", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := guardRequest(tt.remote)
			if tt.ctxIP != "" {
				r = r.WithContext(wsguard.WithClientIP(r.Context(), mustAddr(t, tt.ctxIP)))
			}
			var want netip.Addr
			if tt.want != "" {
				want = mustAddr(t, tt.want)
			}
			if got := wsguard.ClientIP(r); got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

// FuzzRealIP checks that no X-Forwarded-For makes RealIP panic, return an
// invalid address without an error, or name a trusted proxy as the client
// while some hop is not a trusted proxy.
func FuzzRealIP(f *testing.F) {
	seeds := [][2]string{
		{"10.0.0.1:80", "198.51.100.7"},
		{"10.0.0.1:80", "1.1.1.1, 198.51.100.7, 10.0.0.2"},
		{"10.0.0.1:80", "10.0.0.3,10.0.0.2"},
		{"[::ffff:10.0.0.1]:80", "::ffff:10.0.0.2, [2001:db8:1::1]:443"},
		{"203.0.113.5:1", "10.0.0.2"},
		{"10.0.0.1:80", "fe80::1%eth0,,"},
		{"@", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	trusted := []string{"10.0.0.0/8", "2001:db8:1::/48"}
	p, err := wsguard.NewRealIP(trusted)
	if err != nil {
		f.Fatal(err)
	}
	prefixes := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap().WithZone("")
		for _, pfx := range prefixes {
			if pfx.Contains(a) {
				return true
			}
		}
		return false
	}
	// hop parses an address independently of the code under test.
	hop := func(s string) (netip.Addr, bool) {
		s = strings.Trim(s, " \t")
		if a, err := netip.ParseAddr(s); err == nil {
			return a, true
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr(), true
		}
		return netip.Addr{}, false
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header["X-Forwarded-For"] = []string{xff}
		}
		ip, err := p.IP(r)
		if err != nil {
			if ip.IsValid() {
				t.Fatalf("IP() = %v with error %v", ip, err)
			}
			if c := errlog.CodeOf(err); c != errlog.PolicyViolation && c != errlog.Internal {
				t.Fatalf("error code %v", c)
			}
			return
		}
		if !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() {
			t.Fatalf("IP() = %#v, want a valid, unmapped, zoneless address", ip)
		}
		if !isTrusted(ip) {
			return
		}
		peer, ok := hop(remote)
		if !ok || !isTrusted(peer) {
			t.Fatalf("IP() = trusted %v, but the peer %q is not a trusted proxy", ip, remote)
		}
		if xff == "" {
			return
		}
		for _, s := range strings.Split(xff, ",") {
			if a, ok := hop(s); !ok || !isTrusted(a) {
				t.Fatalf("IP() = trusted %v, but hop %q of %q is not a trusted proxy", ip, s, xff)
			}
		}
	})
}
