package validate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// auditLines returns the audit lines logged so far, decoded.
func auditLines(t *testing.T, logs *wstest.Logs) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l["msg"] == "message" {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestAudit(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	r := newRouter()
	validate.Handle(r, "boom", func(context.Context, *wsguard.Conn, say) error { panic("boom") })
	chain := wsguard.NewChain(
		validate.Audit(errlog.NewLogger(logs, slog.LevelDebug)),
		validate.Signed(keys, validate.WithSignedClock(func() time.Time { return signedNow })),
	)
	c := dial(t, serve(t, chain.Then(r), logs))

	ok := sign(t, deviceKey, "device-7", 1, signedNow, `{"type":"say","text":"SECRET"}`)
	bad := sign(t, deviceKey, "device-7", 2, signedNow, `{"type":"join","room":"SECRET","email":"SECRET"}`)
	boom := sign(t, deviceKey, "device-7", 3, signedNow, `{"type":"boom","text":"SECRET"}`)
	sendBytes(t, c, ok)
	read(t, c)
	sendBytes(t, c, bad)
	read(t, c)
	sendBytes(t, c, boom)
	if got := closeStatus(t, c); got != websocket.StatusInternalError {
		t.Fatalf("close %v, want 1011", got)
	}

	lines := auditLines(t, logs)
	want := []struct {
		msg       []byte
		typ, code string
	}{
		{ok, "say", ""},
		{boom, "boom", "internal"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		l := lines[i]
		if l["sub"] != "device-7" || l["frame"] != "text" || l["type"] != w.typ ||
			l["size"] != float64(len(w.msg)) || l["payload_sha256"] != digest(string(w.msg)) ||
			l["level"] != "INFO" || l["conn"] == "" {
			t.Errorf("line %d: %v", i, l)
		}
		if code, _ := l["code"].(string); code != w.code {
			t.Errorf("line %d: code %q, want %q", i, code, w.code)
		}
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("the log repeats message content:\n%s", logs.String())
	}
}

// TestAuditInvalidOneLine checks that a message refused as invalid makes
// one log line, the server's, and not a second one from Audit.
func TestAuditInvalidOneLine(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	chain := wsguard.NewChain(validate.Audit(errlog.NewLogger(logs, slog.LevelDebug)))
	c := dial(t, serve(t, chain.Then(newRouter()), logs, wsguard.WithMaxInvalid(3)))
	tests := []struct {
		msg     string
		wantMsg string // the one line naming it
		code    string
	}{
		{`{"type":"say","text":"hello"}`, "message", ""},
		{`{"type":"join","room":""}`, "message rejected", "invalid_argument"},
		{`{"type":"say","text":"again"}`, "message", ""},
		{`{"type":"say"`, "message rejected", "invalid_argument"},
		{`{"type":"say","text":1}`, "message rejected", "invalid_argument"},
		{`{"type":"say","text":2}`, "connection closed", "policy_violation"},
	}
	for i, tt := range tests {
		send(t, c, tt.msg)
		if i < len(tests)-1 {
			read(t, c)
		}
	}
	if got := closeStatus(t, c); got != websocket.StatusPolicyViolation {
		t.Fatalf("close %v, want 1008", got)
	}
	// The close frame can reach the client before the server has written
	// its line about it.
	logs.WaitFor(t, "connection closed", 5*time.Second)
	for _, tt := range tests {
		var named []map[string]any
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var l map[string]any
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("log line %q: %v", sc.Text(), err)
			}
			if l["payload_sha256"] == digest(tt.msg) {
				named = append(named, l)
			}
		}
		if len(named) != 1 {
			t.Errorf("%s: %d lines name it, want 1:\n%s", tt.msg, len(named), logs.String())
			continue
		}
		if code, _ := named[0]["code"].(string); named[0]["msg"] != tt.wantMsg || code != tt.code {
			t.Errorf("%s: line %v, want %q with code %q", tt.msg, named[0], tt.wantMsg, tt.code)
		}
	}
}

// TestAuditUnrouted checks the line for a message that never reached a
// Router: no type, and nothing the client chose. Without a logger of its
// own, Audit writes to the server's.
func TestAuditUnrouted(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	c := dial(t, serve(t, wsguard.NewChain(validate.Audit(nil)).Then(newRouter()), logs))
	send(t, c, `{"type":"SECRET"}`)
	closeStatus(t, c)
	lines := auditLines(t, logs)
	if len(lines) != 1 {
		t.Fatalf("lines: %v", lines)
	}
	if _, ok := lines[0]["type"]; ok || lines[0]["code"] != "unsupported" || lines[0]["size"] != float64(len(`{"type":"SECRET"}`)) {
		t.Errorf("line %v", lines[0])
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("the log repeats message content:\n%s", logs.String())
	}
}
