package errlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
)

// TestTable walks every code so that the table cannot fall behind the
// list of codes, and pins the wire values the design promises.
func TestTable(t *testing.T) {
	t.Parallel()
	want := map[errlog.Code]struct {
		name        string
		close, http int
		level       slog.Level
	}{
		errlog.Canceled:          {"canceled", 1001, 503, slog.LevelDebug},
		errlog.InvalidArgument:   {"invalid_argument", 0, 400, slog.LevelInfo},
		errlog.InvalidPayload:    {"invalid_payload", 1007, 400, slog.LevelInfo},
		errlog.Unsupported:       {"unsupported", 1003, 400, slog.LevelInfo},
		errlog.TooLarge:          {"too_large", 1009, 413, slog.LevelWarn},
		errlog.Unauthenticated:   {"unauthenticated", 4401, 401, slog.LevelInfo},
		errlog.PermissionDenied:  {"permission_denied", 4403, 403, slog.LevelWarn},
		errlog.DeadlineExceeded:  {"deadline_exceeded", 4408, 408, slog.LevelInfo},
		errlog.Idle:              {"idle", 1001, 0, slog.LevelInfo},
		errlog.ResourceExhausted: {"resource_exhausted", 4429, 429, slog.LevelWarn},
		errlog.Unavailable:       {"unavailable", 1013, 503, slog.LevelInfo},
		errlog.PolicyViolation:   {"policy_violation", 1008, 400, slog.LevelWarn},
		errlog.Protocol:          {"protocol", 1002, 400, slog.LevelInfo},
		errlog.Internal:          {"internal", 1011, 500, slog.LevelError},
	}
	codes := errlog.Codes()
	if len(codes) != len(want) {
		t.Fatalf("%d codes, the design's table has %d", len(codes), len(want))
	}
	names := map[string]bool{}
	for _, c := range codes {
		w, ok := want[c]
		if !ok {
			t.Fatalf("code %d is not in the design's table", c)
		}
		if c.String() != w.name || c.CloseStatus() != w.close || c.HTTPStatus() != w.http || c.Level() != w.level {
			t.Errorf("%s: got (%s, %d, %d, %v), want %+v", w.name, c, c.CloseStatus(), c.HTTPStatus(), c.Level(), w)
		}
		if txt := c.Text(); txt == "" || len(txt) > 123 {
			t.Errorf("%s: public text %q must be 1..123 bytes (a close reason)", c, txt)
		}
		if names[c.String()] {
			t.Errorf("duplicate name %s", c)
		}
		names[c.String()] = true
	}
}

func TestCodeOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want errlog.Code
	}{
		{"nil", nil, 0},
		{"classified", errlog.NewError(errlog.TooLarge, nil), errlog.TooLarge},
		{"classified and wrapped", fmt.Errorf("outer: %w", errlog.NewError(errlog.PermissionDenied, errors.New("x"))), errlog.PermissionDenied},
		// A context error says nothing of whose deadline passed: the
		// server's own timers classify theirs.
		{"deadline", fmt.Errorf("query orders: %w", context.DeadlineExceeded), errlog.Internal},
		{"canceled", context.Canceled, errlog.Internal},
		// Transport and network errors are classified where they happen (a
		// connection's read loop knows its peer left); met anywhere else, as
		// a handler's backend failure, they are internal errors.
		{"transport too big", fmt.Errorf("failed to read: %w", websocket.ErrMessageTooBig), errlog.Internal},
		{"close frame", fmt.Errorf("received close frame: %w", websocket.CloseError{Code: websocket.StatusGoingAway}), errlog.Internal},
		{"EOF", fmt.Errorf("failed to get reader: %w", io.EOF), errlog.Internal},
		{"unexpected EOF", io.ErrUnexpectedEOF, errlog.Internal},
		{"closed socket", net.ErrClosed, errlog.Internal},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, errlog.Internal},
		{"backend refused", fmt.Errorf("query orders: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), errlog.Internal},
		{"unknown", errors.New("something odd"), errlog.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errlog.CodeOf(tc.err); got != tc.want {
				t.Fatalf("CodeOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestPublicTextNeverCarriesDetail(t *testing.T) {
	t.Parallel()
	err := errlog.NewError(errlog.Unauthenticated, errors.New("signature by key kid-7 failed for token eyJ..."))
	if got := errlog.TextOf(err); got != "invalid token" {
		t.Fatalf("TextOf = %q", got)
	}
	expired := fmt.Errorf("wrap: %w", errlog.NewPublicError(errlog.Unauthenticated, "token expired", errors.New("exp 12:00")))
	if got := errlog.TextOf(expired); got != "token expired" {
		t.Fatalf("TextOf = %q", got)
	}
	long := errlog.NewPublicError(errlog.Internal, strings.Repeat("x", 200), nil)
	if n := len(long.Text()); n != 123 {
		t.Fatalf("public text of %d bytes, a close reason holds 123", n)
	}
}

func TestLogRedaction(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := errlog.NewLogger(&buf, slog.LevelDebug)
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
	errlog.Log(context.Background(), l, "handshake rejected",
		errlog.NewError(errlog.Unauthenticated, errors.New("bad signature")),
		slog.Any("token", errlog.Secret(jwt)),
		slog.String("authorization", "Bearer "+jwt),
		slog.String("Cookie", "session=abc123"),
		slog.String("note", "client sent "+jwt),
		slog.Any(errlog.KeyOrigin, errlog.Untrusted("https://evil.example\n{\"level\":\"ERROR\",\"msg\":\"forged\"}")),
		slog.Any(errlog.KeyUA, errlog.Untrusted(strings.Repeat("A", 1000))),
	)
	out := buf.String()
	for _, secret := range []string{jwt, "abc123", "c2lnbmF0dXJl"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log leaks %q:\n%s", secret, out)
		}
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Fatalf("one event wrote %d lines:\n%s", n+1, out)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["code"] != "unauthenticated" || line["level"] != "INFO" || line["err"] != "unauthenticated: bad signature" {
		t.Fatalf("line %v", line)
	}
	if o := line[errlog.KeyOrigin].(string); strings.Contains(o, "\n") || !strings.Contains(o, `\n`) {
		t.Fatalf("origin not escaped: %q", o)
	}
	if ua := line[errlog.KeyUA].(string); len(ua) > 300 {
		t.Fatalf("untrusted string not bounded: %d bytes", len(ua))
	}
}

func TestSecretPrintsRedacted(t *testing.T) {
	t.Parallel()
	s := errlog.Secret("hunter2")
	for _, got := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s)} {
		if strings.Contains(got, "hunter2") {
			t.Fatalf("printed %q", got)
		}
	}
	if string(s) != "hunter2" {
		t.Fatal("the value itself must stay usable")
	}
}

func TestEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":            "plain",
		"a\nb":             `a\nb`,
		"tab\there":        `tab\there`,
		"\x1b[31mred":      `\x1b[31mred`,
		"bad\xffutf8":      `bad\xffutf8`,
		`quote"back\`:      `quote\"back\\`,
		"caf\u00e9 \u2603": "caf\u00e9 \u2603",
	} {
		if got := errlog.Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogSkipsDisabledLevels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := errlog.NewLogger(&buf, slog.LevelInfo)
	errlog.Log(context.Background(), l, "connection closed", errlog.NewError(errlog.Canceled, io.EOF))
	if buf.Len() != 0 {
		t.Fatalf("a peer going away is debug: %s", buf.String())
	}
}

func TestOpenFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "errors.log")
	l, f, err := errlog.OpenFile(path, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	errlog.Log(context.Background(), l, "connection closed", errlog.NewError(errlog.TooLarge, nil), slog.Int(errlog.KeyClose, 1009))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(b, &line); err != nil || line["code"] != "too_large" || line["close"] != float64(1009) {
		t.Fatalf("file holds %q (%v)", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("log file mode %v: logs name clients, keep them private", fi.Mode().Perm())
	}
}

func ExampleCodeOf() {
	err := fmt.Errorf("reading message: %w", errlog.NewError(errlog.TooLarge, errors.New("40000 bytes")))
	code := errlog.CodeOf(err)
	fmt.Println(code, code.CloseStatus(), code.HTTPStatus(), errlog.TextOf(err))
	// Output: too_large 1009 413 message too big
}

func ExampleSecret() {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	l.Info("verified", "token", errlog.Secret("eyJhbGciOi..."), "status", http.StatusOK)
	fmt.Print(buf.String())
	// Output: level=INFO msg=verified token=REDACTED status=200
}

// TestLogBoundsHostileErrorText logs errors whose text a client chose (a
// transport quoting a 512 KiB header back): each is one line of bounded
// size, with nothing in it that could start a line or garble a terminal.
func TestLogBoundsHostileErrorText(t *testing.T) {
	t.Parallel()
	forged := "\n{\"level\":\"ERROR\",\"msg\":\"forged\"}\r\n"
	for _, tc := range []struct {
		name   string
		detail string
		want   string // the err attribute, when short enough to pin
	}{
		{"512 KiB header", `invalid Sec-WebSocket-Key "` + strings.Repeat("A", 512<<10) + `"`, ""},
		{"512 KiB of control characters", strings.Repeat("\x1b[2J\x00\n", 128<<10), ""},
		{"forged line", "bad key" + forged, `protocol: bad key\n{"level":"ERROR","msg":"forged"}\r\n`},
		{"invalid UTF-8", "bad\xff\xfe key", `protocol: bad\xff\xfe key`},
		{"bidi override", "user \u202egnp.exe", `protocol: user \u202egnp.exe`},
		{"printable kept", `origin "caf` + "\u00e9" + `" \x00`, `protocol: origin "caf` + "\u00e9" + `" \x00`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := errlog.NewLogger(&buf, slog.LevelDebug)
			errlog.Log(context.Background(), l, "handshake rejected", errlog.NewError(errlog.Protocol, errors.New(tc.detail)))
			out := buf.Bytes()
			if n := bytes.Count(out, []byte("\n")); n != 1 || out[len(out)-1] != '\n' {
				t.Fatalf("one error wrote %d line breaks", n)
			}
			// 4 KiB of the error, each byte escaped to at most 4, and
			// the rest of the line.
			if len(out) > 4*(4<<10)+512 {
				t.Fatalf("one error wrote a %d-byte line", len(out))
			}
			var line map[string]any
			if err := json.Unmarshal(out, &line); err != nil {
				t.Fatal(err)
			}
			got := line[errlog.KeyErr].(string)
			if tc.want != "" && got != tc.want {
				t.Fatalf("err = %q, want %q", got, tc.want)
			}
			if len(tc.detail) > 4<<10 && !strings.HasSuffix(got, "...") {
				t.Fatalf("err of %d bytes not cut and marked: %d bytes", len(tc.detail), len(got))
			}
			for _, r := range got {
				if r == utf8.RuneError || !strconv.IsPrint(r) {
					t.Fatalf("err keeps %U: %q", r, got)
				}
			}
		})
	}
}

// TestErrAttrEscapesForEveryHandler checks the escaping is the attribute's
// own, not the JSON handler's: a text handler, or any other, gets the same
// bounded value.
func TestErrAttrEscapesForEveryHandler(t *testing.T) {
	t.Parallel()
	a := errlog.ErrAttr(errors.New("a\nb\xff" + strings.Repeat("x", 5000)))
	got := a.Value.Resolve().String()
	if a.Key != errlog.KeyErr || !strings.HasPrefix(got, `a\nb\xffxxx`) || !strings.HasSuffix(got, "...") || len(got) != 4<<10+1+3+3 {
		t.Fatalf("%s = %q (%d bytes)", a.Key, got, len(got))
	}
	if got := errlog.ErrAttr(nil).Value.Resolve().String(); got != "<nil>" {
		t.Fatalf("nil error logs as %q", got)
	}
}

// TestLogNilError: a nil error is a caller's mistake; it is logged, once,
// at the level of internal errors, instead of panicking on err.Error().
func TestLogNilError(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	errlog.Log(context.Background(), errlog.NewLogger(&buf, slog.LevelDebug), "connection closed", nil, slog.Int(errlog.KeyClose, 1011))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if line["level"] != "ERROR" || line[errlog.KeyCode] != "internal" || line[errlog.KeyErr] != "internal: errlog.Log called with a nil error" || line[errlog.KeyClose] != float64(1011) {
		t.Fatalf("line %v", line)
	}
}
