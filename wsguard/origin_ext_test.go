package wsguard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

func TestNewOriginCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		patterns   []string
		wantErr    bool
		badPattern bool // the error wraps path.ErrBadPattern
	}{
		{"none", nil, false, false},
		{"hosts", []string{"app.example.com", "*.example.com", "localhost:*", "127.0.0.1:8080"}, false, false},
		{"with scheme", []string{"https://app.example.com", "*://app.example.com"}, false, false},
		{"upper case", []string{"App.Example.COM"}, false, false},
		{"star", []string{"*"}, true, false},
		{"star among good", []string{"app.example.com", "*"}, true, false},
		{"any dotted host", []string{"*.*"}, true, false},
		{"any host with a port", []string{"*:*"}, true, false},
		{"any host on a port", []string{"*:8443"}, true, false},
		{"any http origin", []string{"http://*"}, true, false},
		{"any https origin", []string{"https://*"}, true, false},
		{"any scheme any host", []string{"*://*"}, true, false},
		{"a whole TLD", []string{"*.com"}, true, false},
		{"any IPv4", []string{"*.*.*.*"}, true, false},
		{"character class", []string{"[a-z]*"}, true, false},
		{"empty", []string{""}, true, false},
		{"unclosed class", []string{"[a-z"}, true, true},
		{"trailing escape", []string{`app.example.com\`}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := wsguard.NewOriginCheck(tt.patterns)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewOriginCheck(%q) error = %v, wantErr %v", tt.patterns, err, tt.wantErr)
			}
			if got := errors.Is(err, path.ErrBadPattern); got != tt.badPattern {
				t.Errorf("errors.Is(%v, path.ErrBadPattern) = %v, want %v", err, got, tt.badPattern)
			}
		})
	}
}

func TestOriginCheck(t *testing.T) {
	t.Parallel()
	c, err := wsguard.NewOriginCheck([]string{"app.example.com", "*.example.org", "HTTPS://secure.example.net", "localhost:*"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		host    string
		origins []string // one element per header line
		want    bool
	}{
		{"no Origin: not a browser", "ws.example.com", nil, true},
		{"empty Origin", "ws.example.com", []string{""}, true},
		{"same host", "ws.example.com", []string{"https://ws.example.com"}, true},
		{"same host, any case", "WS.Example.com", []string{"https://ws.EXAMPLE.com"}, true},
		{"same host and port", "ws.example.com:8443", []string{"https://ws.example.com:8443"}, true},
		{"same host, other port", "ws.example.com:8443", []string{"https://ws.example.com:9443"}, false},
		{"same name, other port vs none", "ws.example.com", []string{"https://ws.example.com:8443"}, false},
		{"cross origin", "ws.example.com", []string{"https://evil.example"}, false},
		{"pattern", "ws.example.com", []string{"https://app.example.com"}, true},
		{"pattern, any case", "ws.example.com", []string{"https://APP.example.COM"}, true},
		{"pattern, any scheme", "ws.example.com", []string{"http://app.example.com"}, true},
		{"pattern binds the port", "ws.example.com", []string{"https://app.example.com:8443"}, false},
		{"wildcard subdomain", "ws.example.com", []string{"https://a.b.example.org"}, true},
		{"wildcard needs a subdomain", "ws.example.com", []string{"https://example.org"}, false},
		{"suffix trick", "ws.example.com", []string{"https://app.example.com.evil.example"}, false},
		{"prefix trick", "ws.example.com", []string{"https://evilapp.example.com"}, false},
		{"wildcard suffix trick", "ws.example.com", []string{"https://x.example.org.evil.example"}, false},
		{"scheme pattern", "ws.example.com", []string{"https://secure.example.net"}, true},
		{"scheme pattern, wrong scheme", "ws.example.com", []string{"http://secure.example.net"}, false},
		{"port wildcard", "ws.example.com", []string{"http://localhost:3000"}, true},
		{"null", "ws.example.com", []string{"null"}, false},
		{"null on an empty Host", "", []string{"null"}, false},
		{"no host on an empty Host", "", []string{"file://"}, false},
		{"two Origin headers", "ws.example.com", []string{"https://ws.example.com", "https://evil.example"}, false},
		{"no scheme", "ws.example.com", []string{"ws.example.com"}, false},
		{"path", "ws.example.com", []string{"https://ws.example.com/"}, false},
		{"path trick", "ws.example.com", []string{"https://evil.example/app.example.com"}, false},
		{"query", "ws.example.com", []string{"https://ws.example.com?x=1"}, false},
		{"empty fragment", "ws.example.com", []string{"https://ws.example.com#"}, false},
		{"user info", "ws.example.com", []string{"https://app.example.com@evil.example"}, false},
		{"upper-case scheme", "ws.example.com", []string{"HTTPS://ws.example.com"}, false},
		{"space", "ws.example.com", []string{" https://ws.example.com"}, false},
		{"newline", "ws.example.com", []string{"https://ws.example.com\n"}, false},
		{"bad port", "ws.example.com", []string{"https://ws.example.com:x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := guardRequest("198.51.100.7:1")
			r.Host = tt.host
			for _, o := range tt.origins {
				r.Header.Add("Origin", o)
			}
			err := c.Check(r)
			if tt.want {
				if err != nil {
					t.Errorf("Check = %v, want admitted", err)
				}
				return
			}
			if code := errlog.CodeOf(err); code != errlog.PermissionDenied {
				t.Errorf("Check = %v, want permission_denied", err)
			}
		})
	}
}

func TestOriginCheckHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		origin     string
		wantStatus int
		wantLog    string // the escaped origin in the log; "" for no line
	}{
		{"admitted", "https://app.example.com", http.StatusNoContent, ""},
		{"refused", "https://evil.example", http.StatusForbidden, "https://evil.example"},
		{"log injection", "https://evil.example\n{\"msg\":\"forged\"}", http.StatusForbidden, `https://evil.example\n{\"msg\":\"forged\"}`},
		{"terminal escape", "https://evil.example\x1b[2J", http.StatusForbidden, `https://evil.example\x1b[2J`},
		{"flood", "https://" + strings.Repeat("a", 10_000), http.StatusForbidden, "https://" + strings.Repeat("a", 248) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, l := newGuardLog()
			c, err := wsguard.NewOriginCheck([]string{"app.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			r := guardRequest("198.51.100.7:1")
			r.Header.Set("Origin", tt.origin)
			w := httptest.NewRecorder()
			wsguard.Instrument(l, nil)(c.Handler(guardOK)).ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantLog == "" {
				if got := log.String(); got != "" {
					t.Errorf("an admitted request logged %q", got)
				}
				return
			}
			if got := w.Body.String(); got != "forbidden" {
				t.Errorf("body = %q, want forbidden", got)
			}
			if strings.Count(log.String(), "\n") != 1 {
				t.Fatalf("want one log line, got:\n%s", log.String())
			}
			line := log.oneLine(t)
			if line[errlog.KeyOrigin] != tt.wantLog || line[errlog.KeyCode] != "permission_denied" ||
				line[errlog.KeyStatus] != float64(403) || line[errlog.KeyRemote] != "198.51.100.7" {
				t.Errorf("log line = %v, want origin %q", line, tt.wantLog)
			}
			if len(log.String()) > 2048 {
				t.Errorf("log line of %d bytes for a long Origin", len(log.String()))
			}
		})
	}
}

// FuzzOriginCheck checks that an admitted Origin is absent, names the
// request's own host, or is exactly scheme://host for an allowed host.
func FuzzOriginCheck(f *testing.F) {
	for _, s := range [][2]string{
		{"ws.example.com", "https://ws.example.com"},
		{"ws.example.com", "https://app.example.com"},
		{"ws.example.com", "https://x.example.org"},
		{"", "null"},
		{"ws.example.com", "https://app.example.com@evil.example"},
		{"ws.example.com", "https://evil.example/app.example.com"},
	} {
		f.Add(s[0], s[1])
	}
	c, err := wsguard.NewOriginCheck([]string{"app.example.com", "*.example.org"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, origin string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		r.Header["Origin"] = []string{origin}
		err := c.Check(r)
		if err != nil {
			if code := errlog.CodeOf(err); code != errlog.PermissionDenied {
				t.Fatalf("Check = %v, want permission_denied", err)
			}
			return
		}
		if origin == "" {
			return
		}
		scheme, h, ok := strings.Cut(origin, "://")
		if !ok || scheme == "" || h == "" || strings.ContainsAny(h, "/?#@ \t\r\n") {
			t.Fatalf("admitted malformed Origin %q", origin)
		}
		lh := strings.ToLower(h)
		if strings.EqualFold(h, host) || lh == "app.example.com" ||
			strings.HasSuffix(lh, ".example.org") && !strings.Contains(lh, "/") {
			return
		}
		t.Fatalf("admitted Origin %q for Host %q", origin, host)
	})
}

// TestOriginPatternLabels checks that a wildcard stops at a label
// boundary: "*example.com" would admit evilexample.com, so it is refused
// at construction with an error naming it.
func TestOriginPatternLabels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		ok      bool
		admits  []string // Origins the pattern admits, for one that is accepted
		refuses []string // Origins it does not
	}{
		{"*.example.com", true, []string{"https://a.example.com", "https://a.b.example.com"},
			[]string{"https://evilexample.com", "https://example.com", "https://a.example.com.evil.example"}},
		{"*.*.example.com", true, []string{"https://a.b.example.com"}, []string{"https://a.example.com"}},
		{"app.example.com", true, []string{"https://app.example.com"}, []string{"https://evilapp.example.com"}},
		{"my_app-1.example.com", true, []string{"https://my_app-1.example.com"}, nil},
		{"localhost:*", true, []string{"http://localhost:3000"}, []string{"http://localhost"}},
		{"127.0.0.1:8080", true, []string{"http://127.0.0.1:8080"}, []string{"http://127.0.0.1:8081"}},
		{"https://*.example.com:8443", true, []string{"https://a.example.com:8443"}, []string{"http://a.example.com:8443"}},
		{"*://app.example.com", true, []string{"http://app.example.com", "https://app.example.com"}, nil},
		{`\[::1\]:8080`, true, []string{"http://[::1]:8080"}, []string{"http://[::2]:8080"}},
		{`https://\[2001:db8::7\]`, true, []string{"https://[2001:db8::7]"}, []string{"http://[2001:db8::7]"}},

		{"*example.com", false, nil, nil},
		{"*-app.example.com", false, nil, nil},
		{"app*.example.com", false, nil, nil},
		{"app.*", false, nil, nil},
		{"app.*.example.com", false, nil, nil},
		{"app.example.*", false, nil, nil},
		{"a?.example.com", false, nil, nil},
		{"[a-z].example.com", false, nil, nil},
		{`\a.example.com`, false, nil, nil},
		{"example.com:8*", false, nil, nil},
		{"example.com:", false, nil, nil},
		{"example.com:123456", false, nil, nil},
		{"http*://example.com", false, nil, nil},
		{"1http://example.com", false, nil, nil},
		{"example..com", false, nil, nil},
		{"example.com.", false, nil, nil},
		{"https://", false, nil, nil},
		{":8080", false, nil, nil},
		{"exa mple.com", false, nil, nil},
		{`\[::1\]8080`, false, nil, nil},
		{`\[127.0.0.1\]`, false, nil, nil},
		{`\[fe80::1%eth0\]`, false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			c, err := wsguard.NewOriginCheck([]string{"other.example.net", tt.pattern})
			if !tt.ok {
				if err == nil {
					t.Fatalf("NewOriginCheck(%q): no error", tt.pattern)
				}
				if !strings.Contains(err.Error(), strconv.Quote(tt.pattern)) {
					t.Errorf("error %q does not name the pattern", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewOriginCheck(%q): %v", tt.pattern, err)
			}
			for _, o := range append(tt.admits, tt.refuses...) {
				r := guardRequest("198.51.100.7:1")
				r.Host = "ws.example.org"
				r.Header.Set("Origin", o)
				want := slices.Contains(tt.admits, o)
				if err := c.Check(r); (err == nil) != want {
					t.Errorf("Check(%q) = %v, want admitted %v", o, err, want)
				}
			}
		})
	}
}
