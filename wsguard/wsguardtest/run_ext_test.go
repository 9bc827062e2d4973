package wsguardtest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
	"github.com/wsguard/kit/wsguard/wsguardtest"
)

var echo = wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
	switch string(m.Data) {
	case "bye":
		return c.Close(wsguard.StatusNormalClosure, "bye")
	case "expired":
		return errlog.NewError(errlog.Unauthenticated, errors.New("token expired"))
	case "panic":
		panic("handler bug")
	case "who":
		return c.SendText(ctx, "you are "+c.Subject())
	}
	return c.SendText(ctx, "echo "+string(m.Data))
})

func asAlice(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(wsguard.WithSubject(r.Context(), "alice")))
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		msgs     []string
		opts     []wsguard.Option
		sent     string // joined with "|"
		status   wsguard.StatusCode
		reason   string
		byServer bool
		logCode  string // in the closing log line
	}{
		{"every message answered", []string{"a", "b"}, nil, "echo a|echo b", wsguard.StatusNormalClosure, "", false, ""},
		{"no message", nil, nil, "", wsguard.StatusNormalClosure, "", false, ""},
		{"the handler closes", []string{"a", "bye", "c"}, nil, "echo a", wsguard.StatusNormalClosure, "bye", true, ""},
		{"an error closes with its code", []string{"expired"}, nil, "", 4401, "invalid token", true, `"code":"unauthenticated"`},
		{"a panic closes with 1011", []string{"panic"}, nil, "", 1011, "internal error", true, `"code":"internal"`},
		{"over the read limit", []string{"ab"}, []wsguard.Option{wsguard.WithReadLimit(1)}, "", 1009, "message too big", true, `"code":"too_large"`},
		{"handshake middleware applies", []string{"who"}, []wsguard.Option{wsguard.WithHandshake(asAlice)}, "you are alice",
			wsguard.StatusNormalClosure, "", false, `"sub":"alice"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := wsguardtest.Run(ctx, echo, tt.msgs, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(res.Texts(), "|"); got != tt.sent {
				t.Fatalf("sent %q, want %q", got, tt.sent)
			}
			if res.Status != tt.status || res.Reason != tt.reason || res.ClosedByServer != tt.byServer {
				t.Fatalf("closed %d %q by server %v, want %d %q %v", res.Status, res.Reason, res.ClosedByServer, tt.status, tt.reason, tt.byServer)
			}
			if !strings.Contains(res.Log, `"msg":"connection closed"`) || !strings.Contains(res.Log, tt.logCode) {
				t.Fatalf("log without the closing line or %s:\n%s", tt.logCode, res.Log)
			}
		})
	}
}

func TestRunRefusedHandshake(t *testing.T) {
	t.Parallel()
	refuse := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wsguard.Reject(w, r, nil, errlog.NewError(errlog.PermissionDenied, errors.New("no")))
		})
	}
	_, err := wsguardtest.Run(context.Background(), echo, []string{"a"}, wsguard.WithHandshake(refuse))
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("err = %v, want the 403 named", err)
	}
}
