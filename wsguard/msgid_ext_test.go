package wsguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

func TestMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data string
		want       wsguard.MessageID
	}{
		{"string", `{"type":"x","id":"a1"}`, `"a1"`},
		{"uuid first", `{"id":"8f14e45f-ceea-467f-a0e6-a1b2c3d4e5f6","type":"x"}`, `"8f14e45f-ceea-467f-a0e6-a1b2c3d4e5f6"`},
		{"spaces", `{ "type" : "x" , "id" : 42 }`, `42`},
		{"negative", `{"id":-7}`, `-7`},
		{"zero", `{"id":0}`, `0`},
		{"twenty digits", `{"id":12345678901234567890}`, `12345678901234567890`},
		{"nested id is not the message's", `{"data":{"id":"a"}}`, ``},
		{"none", `{"type":"x"}`, ``},
		{"name by case", `{"ID":"a"}`, ``},
		{"duplicate", `{"id":"a","id":"b"}`, ``},
		{"empty string", `{"id":""}`, ``},
		{"markup", `{"id":"<script>"}`, ``},
		{"escape", `{"id":"a\u0022b"}`, ``},
		{"space inside", `{"id":"a b"}`, ``},
		{"too long", `{"id":"` + strings.Repeat("a", 63) + `"}`, ``},
		{"longest", `{"id":"` + strings.Repeat("a", 62) + `"}`, wsguard.MessageID(`"` + strings.Repeat("a", 62) + `"`)},
		{"fraction", `{"id":1.5}`, ``},
		{"exponent", `{"id":1e3}`, ``},
		{"leading zero", `{"id":01}`, ``},
		{"twenty-one digits", `{"id":123456789012345678901}`, ``},
		{"object", `{"id":{"a":1}}`, ``},
		{"bool", `{"id":true}`, ``},
		{"null", `{"id":null}`, ``},
		{"not an object", `["id","a"]`, ``},
		{"broken after the id", `{"id":"a",`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := &wsguard.Message{Type: wsguard.MessageText, Data: []byte(tt.data)}
			if got := m.ID(); got != tt.want {
				t.Fatalf("ID() = %q, want %q", got, tt.want)
			}
		})
	}
	b, _ := json.Marshal(struct {
		ID wsguard.MessageID `json:"id,omitempty"`
	}{})
	if string(b) != `{}` {
		t.Fatalf("an empty id marshals as %s", b)
	}
}

func TestErrorReplyEchoesTheMessageID(t *testing.T) {
	t.Parallel()
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return errlog.NewError(errlog.InvalidArgument, errors.New("no"))
	})
	ts := start(t, h)
	c := dial(t, ts.URL, nil)
	tests := []struct{ send, want string }{
		{`{"id":"req-1","type":"x"}`, `{"type":"error","code":"invalid_argument","message":"invalid argument","id":"req-1"}`},
		{`{"id":17}`, `{"type":"error","code":"invalid_argument","message":"invalid argument","id":17}`},
		{`{"id":"<b>"}`, `{"type":"error","code":"invalid_argument","message":"invalid argument"}`},
		{`not json`, `{"type":"error","code":"invalid_argument","message":"invalid argument"}`},
	}
	for _, tt := range tests {
		if got := roundTrip(t, c, tt.send); got != tt.want {
			t.Fatalf("%s: reply %s, want %s", tt.send, got, tt.want)
		}
	}
}
