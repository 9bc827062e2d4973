package wsguard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

func TestNewIPFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		allow, deny []string
		wantErr     bool
	}{
		{"empty", nil, nil, false},
		{"IPs and prefixes", []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1"}, []string{"10.1.0.0/16"}, false},
		{"bad allow", []string{"10.0.0.0/8", "ten"}, nil, true},
		{"bad deny", nil, []string{"10.0.0.0/40"}, true},
		{"host bits set", []string{"192.0.2.1/24"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := wsguard.NewIPFilter(tt.allow, tt.deny)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewIPFilter error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestIPFilterCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		allow, deny []string
		remote      string
		want        bool
	}{
		{"no lists allow all", nil, nil, "198.51.100.7:1", true},
		{"empty allow, not denied", nil, []string{"203.0.113.0/24"}, "198.51.100.7:1", true},
		{"empty allow, denied", nil, []string{"203.0.113.0/24"}, "203.0.113.5:1", false},
		{"denied single IP", nil, []string{"203.0.113.5"}, "203.0.113.5:1", false},
		{"allowed", []string{"198.51.100.0/24"}, nil, "198.51.100.7:1", true},
		{"not in allow list", []string{"198.51.100.0/24"}, nil, "203.0.113.5:1", false},
		{"deny wins over allow", []string{"198.51.100.0/24"}, []string{"198.51.100.7"}, "198.51.100.7:1", false},
		{"allowed beside a denied neighbour", []string{"198.51.100.0/24"}, []string{"198.51.100.7"}, "198.51.100.8:1", true},
		{"mapped client against IPv4 list", []string{"198.51.100.0/24"}, nil, "[::ffff:198.51.100.7]:1", true},
		{"mapped list entry against IPv4 client", nil, []string{"::ffff:198.51.100.0/120"}, "198.51.100.7:1", false},
		{"IPv6 allowed", []string{"2001:db8::/32"}, nil, "[2001:db8:5::1]:1", true},
		{"IPv6 not allowed", []string{"2001:db8::/32"}, nil, "[2001:db9::1]:1", false},
		{"IPv4 list does not admit IPv6", []string{"0.0.0.0/0"}, nil, "[2001:db8::1]:1", false},
		{"unknown client IP is refused", nil, nil, "@", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := wsguard.NewIPFilter(tt.allow, tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			err = f.Check(guardRequest(tt.remote))
			if tt.want {
				if err != nil {
					t.Errorf("Check = %v, want admitted", err)
				}
				return
			}
			if c := errlog.CodeOf(err); c != errlog.PermissionDenied {
				t.Errorf("Check = %v, want permission_denied", err)
			}
		})
	}
}

func TestIPFilterHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		remote     string
		wantStatus int
		wantBody   string
	}{
		{"admitted", "198.51.100.7:1", http.StatusNoContent, ""},
		{"refused", "203.0.113.5:1", http.StatusForbidden, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, l := newGuardLog()
			f, err := wsguard.NewIPFilter(nil, []string{"203.0.113.0/24"})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			wsguard.Instrument(l, nil)(f.Handler(guardOK)).ServeHTTP(w, guardRequest(tt.remote))
			if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body.String(), tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == http.StatusForbidden {
				line := log.oneLine(t)
				if line[errlog.KeyCode] != "permission_denied" || line[errlog.KeyRemote] != "203.0.113.5" {
					t.Errorf("log line = %v", line)
				}
			}
		})
	}
}
