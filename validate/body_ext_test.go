package validate_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

type orderStatus struct {
	Order  string `json:"order" validate:"required,uuid"`
	Status string `json:"status" validate:"required,oneof=paid shipped"`
	Notify string `json:"notify" validate:"omitempty,email"`
}

func TestBody(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	guard := validate.Body[orderStatus](newValidator(validate.WithMaxBody(256)))
	hs := httptest.NewServer(wsguard.Instrument(errlog.NewLogger(logs, slog.LevelDebug), nil)(guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, ok := validate.BodyFrom[orderStatus](r.Context())
		if !ok {
			http.Error(w, "no body", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(o)
	}))))
	t.Cleanup(hs.Close)

	const id = "8f14e45f-ceea-467f-a0e6-a1b2c3d4e5f6"
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        string
	}{
		{"valid", "application/json", `{"order":"` + id + `","status":"paid"}`, 200,
			`{"order":"` + id + `","status":"paid","notify":""}`},
		{"json with a charset", "application/json; charset=utf-8", `{"order":"` + id + `","status":"shipped"}`, 200,
			`{"order":"` + id + `","status":"shipped","notify":""}`},
		{"a +json type", "application/merge-patch+json", `{"order":"` + id + `","status":"paid"}`, 200,
			`{"order":"` + id + `","status":"paid","notify":""}`},
		{"failed rules", "application/json", `{"order":"SECRET","status":"SECRET","notify":"SECRET"}`, 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"order","rule":"uuid"},{"field":"status","rule":"oneof","param":"paid shipped"},{"field":"notify","rule":"email"}]}`},
		{"unknown member", "application/json", `{"order":"` + id + `","status":"paid","SECRET":1}`, 400,
			`{"type":"error","code":"invalid_argument","message":"unknown field","offset":64}`},
		{"duplicate key", "application/json", `{"status":"paid","status":"SECRET"}`, 400,
			`{"type":"error","code":"invalid_json","message":"duplicate key","offset":17}`},
		{"not an object", "application/json", `["SECRET"]`, 400,
			`{"type":"error","code":"invalid_json","message":"expected a JSON object","offset":0}`},
		{"empty", "application/json", ``, 400,
			`{"type":"error","code":"invalid_json","message":"expected a JSON object","offset":0}`},
		{"form", "application/x-www-form-urlencoded", `order=SECRET`, 400,
			`{"type":"error","code":"unsupported","message":"unsupported message"}`},
		{"text/plain", "text/plain", `{"order":"SECRET"}`, 400,
			`{"type":"error","code":"unsupported","message":"unsupported message"}`},
		{"no content type", "", `{"order":"SECRET"}`, 400,
			`{"type":"error","code":"unsupported","message":"unsupported message"}`},
		{"over the limit", "application/json", `{"order":"` + strings.Repeat("SECRET", 50) + `"}`, 413,
			`{"type":"error","code":"too_large","message":"message too big"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodPost, hs.URL+"/orders", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || strings.TrimSpace(string(b)) != tt.want {
				t.Fatalf("got %d %s\nwant %d %s", resp.StatusCode, b, tt.status, tt.want)
			}
			if tt.status != 200 && resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "SECRET") {
			t.Errorf("the log carries the body:\n%s", logs)
		}
		if n := len(logs.Find(t, "request rejected")); n != len(tests)-3 {
			t.Errorf("%d rejection lines, want one per refused request:\n%s", n, logs)
		}
	})
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		header string // a header the answer must carry, "Name: value"
		want   string
	}{
		{"unauthenticated", errlog.NewError(errlog.Unauthenticated, errors.New("SECRET token")), 401,
			`WWW-Authenticate: Bearer error="invalid_token"`, `{"type":"error","code":"unauthenticated","message":"invalid token"}`},
		{"permission", errlog.NewError(errlog.PermissionDenied, errors.New("SECRET")), 403,
			"Cache-Control: no-store", `{"type":"error","code":"permission_denied","message":"forbidden"}`},
		{"an error without a code", errors.New("SECRET <script>"), 500,
			"X-Content-Type-Options: nosniff", `{"type":"error","code":"internal","message":"internal error"}`},
		{"nil", nil, 500, "Content-Type: application/json", `{"type":"error","code":"internal","message":"internal error"}`},
		{"no HTTP meaning", errlog.NewError(errlog.Idle, errors.New("SECRET")), 500,
			"Content-Type: application/json", `{"type":"error","code":"idle","message":"idle timeout"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := new(wstest.Logs)
			r := httptest.NewRequest(http.MethodPost, "/x", nil)
			r = r.WithContext(r.Context())
			w := httptest.NewRecorder()
			wsguard.Instrument(errlog.NewLogger(logs, slog.LevelDebug), nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				validate.WriteError(w, r, tt.err)
			})).ServeHTTP(w, r)
			if w.Code != tt.status || strings.TrimSpace(w.Body.String()) != tt.want {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, tt.status, tt.want)
			}
			name, value, _ := strings.Cut(tt.header, ": ")
			if got := w.Header().Get(name); got != value {
				t.Fatalf("%s: %q, want %q", name, got, value)
			}
			lines := logs.Find(t, "request rejected")
			if len(lines) != 1 {
				t.Fatalf("want one log line:\n%s", logs)
			}
		})
	}
}

func TestReplyOfAValidationErrorIsTypedError(t *testing.T) {
	t.Parallel()
	err := newValidator().Unmarshal([]byte(`{"SECRET":1}`), &orderStatus{})
	rp, ok := errors.AsType[wsguard.Replier](err)
	if !ok {
		t.Fatalf("%v is not a Replier", err)
	}
	if got := rp.Reply().Type; got != "error" {
		t.Fatalf("Reply().Type = %q, want error", got)
	}
}
