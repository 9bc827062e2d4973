package validate_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

type queryParams struct {
	Room   string   `json:"room" validate:"required,alphanum"`
	Email  string   `json:"email" validate:"omitempty,email"`
	Limit  uint8    `json:"limit" validate:"lte=100"`
	Offset int      `json:"offset"`
	Ratio  float64  `json:"ratio"`
	Debug  bool     `json:"debug"`
	Tags   []string `json:"tag" validate:"max=3,dive,alpha"`
	Hidden string   `json:"-"`
}

func TestQuery(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	guard := validate.Query[queryParams](newValidator())
	hs := httptest.NewServer(wsguard.Instrument(errlog.NewLogger(logs, slog.LevelDebug), nil)(guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := validate.QueryFrom[queryParams](r.Context())
		if !ok {
			http.Error(w, "no params", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	}))))
	t.Cleanup(hs.Close)

	tests := []struct {
		name   string
		query  string
		status int
		want   string
	}{
		{"valid", "room=lobby&email=ada%40example.com&limit=100&offset=-3&ratio=0.5&debug=true&tag=a&tag=b", 200,
			`{"room":"lobby","email":"ada@example.com","limit":100,"offset":-3,"ratio":0.5,"debug":true,"tag":["a","b"]}`},
		{"minimal", "room=lobby", 200,
			`{"room":"lobby","email":"","limit":0,"offset":0,"ratio":0,"debug":false,"tag":null}`},
		{"required", "", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"room","rule":"required"}]}`},
		{"email", "room=lobby&email=SECRET", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"email","rule":"email"}]}`},
		{"rule on a repeated value", "room=lobby&tag=a&tag=SECRET1", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"tag[1]","rule":"alpha"}]}`},
		{"unknown parameter", "room=lobby&SECRET=1", 400,
			`{"type":"error","code":"invalid_argument","message":"unknown parameter"}`},
		{"hidden field is unknown", "room=lobby&Hidden=SECRET", 400,
			`{"type":"error","code":"invalid_argument","message":"unknown parameter"}`},
		{"name by case", "Room=SECRET", 400,
			`{"type":"error","code":"invalid_argument","message":"unknown parameter"}`},
		{"malformed escape", "room=SECRET%zz", 400,
			`{"type":"error","code":"invalid_argument","message":"malformed query"}`},
		{"semicolon", "room=lobby;SECRET=1", 400,
			`{"type":"error","code":"invalid_argument","message":"malformed query"}`},
		{"repeated single value", "room=lobby&room=SECRET", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"room","rule":"duplicate"}]}`},
		{"not a number", "room=lobby&limit=SECRET", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"limit","rule":"type","param":"integer"}]}`},
		{"out of range", "room=lobby&limit=256", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"limit","rule":"range"}]}`},
		{"negative unsigned", "room=lobby&limit=-1", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"limit","rule":"type","param":"integer"}]}`},
		{"rule after decoding", "room=lobby&limit=101", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"limit","rule":"lte","param":"100"}]}`},
		{"NaN", "room=lobby&ratio=NaN", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"ratio","rule":"type","param":"number"}]}`},
		{"float overflow", "room=lobby&ratio=1e400", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"ratio","rule":"range"}]}`},
		{"loose boolean", "room=lobby&debug=1", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"debug","rule":"type","param":"boolean"}]}`},
		{"invalid UTF-8", "room=SECRET%ff", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"room","rule":"invalid"}]}`},
		{"several, sorted", "room=a&room=b&limit=x&debug=yes", 400,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"debug","rule":"type","param":"boolean"},{"field":"limit","rule":"type","param":"integer"},{"field":"room","rule":"duplicate"}]}`},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				resp, err := http.Get(hs.URL + "/ws?" + tt.query)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != tt.status || strings.TrimSpace(string(body)) != tt.want {
					t.Errorf("got %d %s\nwant %d %s", resp.StatusCode, body, tt.status, tt.want)
				}
				if tt.status == 400 && resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
				}
			})
		}
	})
	t.Run("log", func(t *testing.T) {
		l := logs.String()
		if strings.Contains(l, "SECRET") {
			t.Errorf("the log repeats a query value:\n%s", l)
		}
		if !strings.Contains(l, `"status":400`) || !strings.Contains(l, `"code":"invalid_argument"`) {
			t.Errorf("log:\n%s", l)
		}
	})
}

// TestQueryOnConnection checks that the decoded parameters reach the
// connection's handlers.
func TestQueryOnConnection(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	v := newValidator()
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		p, _ := validate.QueryFrom[queryParams](ctx)
		return c.SendText(ctx, "room "+p.Room)
	})
	url := serve(t, h, logs, wsguard.WithHandshake(validate.Query[queryParams](v)))
	c := dial(t, url+"?room=lobby")
	send(t, c, "hi")
	if got := read(t, c); got != "room lobby" {
		t.Errorf("got %q", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url+"?room=SECRET!", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("dial with a bad room: %v %v", resp, err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	// Installed on the server, the guard logs to the server's logger.
	if lines := logs.Find(t, "handshake rejected"); len(lines) != 1 || lines[0]["status"] != float64(http.StatusBadRequest) {
		t.Errorf("server log: %v", lines)
	}
}

func TestQueryPanics(t *testing.T) {
	t.Parallel()
	v := newValidator()
	tests := []struct {
		name string
		f    func()
	}{
		{"not a struct", func() { validate.Query[map[string]string](v) }},
		{"nested struct", func() {
			validate.Query[struct {
				P profile `json:"p"`
			}](v)
		}},
		{"embedded pointer", func() {
			validate.Query[struct {
				*profile
			}](v)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}
