package validate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

var (
	deviceKey = []byte("0123456789abcdef0123456789abcdef")
	otherKey  = []byte("fedcba9876543210fedcba9876543210")
	signedNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
)

func keys(_ context.Context, keyID string) ([]byte, error) {
	switch keyID {
	case "device-7":
		return deviceKey, nil
	case "device-8":
		return otherKey, nil
	case "flaky":
		return nil, errlog.NewError(errlog.Unavailable, errors.New("key store down"))
	case "short":
		return []byte("short"), nil
	case "dial-error":
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case "eof":
		return nil, fmt.Errorf("key store: %w", io.ErrUnexpectedEOF)
	case "plain-error":
		return nil, errors.New("key store returned nonsense")
	}
	return nil, nil
}

// signedServer echoes what the handler behind Signed sees: the subject,
// the body and the digest.
func signedServer(t *testing.T, opts ...wsguard.Option) string {
	t.Helper()
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, c.Subject()+"|"+string(m.Data)+"|"+m.Digest())
	})
	mw := validate.Signed(keys, validate.WithSignedClock(func() time.Time { return signedNow }))
	return serve(t, wsguard.NewChain(mw).Then(echo), new(wstest.Logs), opts...)
}

func sign(t *testing.T, key []byte, keyID string, seq uint64, ts time.Time, body string) []byte {
	t.Helper()
	msg, err := validate.Sign(key, keyID, seq, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestSignedAccepts(t *testing.T) {
	t.Parallel()
	c := dial(t, signedServer(t))
	for _, tc := range []struct {
		seq uint64
		ts  time.Time
	}{
		{1, signedNow},
		{2, signedNow.Add(-validate.DefaultSkew)}, // the edges of the window
		{9, signedNow.Add(validate.DefaultSkew)},  // gaps in the sequence are fine
	} {
		msg := sign(t, deviceKey, "device-7", tc.seq, tc.ts, `{"n":1}`)
		sendBytes(t, c, msg)
		want := `device-7|{"n":1}|` + digest(string(msg))
		if got := read(t, c); got != want {
			t.Errorf("seq %d: got %q, want %q", tc.seq, got, want)
		}
	}
}

func TestSignedRejects(t *testing.T) {
	t.Parallel()
	url := signedServer(t)
	good := func(seq uint64) []byte { return sign(t, deviceKey, "device-7", seq, signedNow, "hello") }
	// flip changes the first character of the signature.
	flip := func(b []byte) []byte {
		b = bytes.Clone(b)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return b
	}
	tests := []struct {
		name string
		msgs [][]byte // all but the last must be accepted
		want websocket.StatusCode
	}{
		{"unsigned", [][]byte{[]byte(`{"type":"say"}`)}, errlog.CloseUnauthenticated},
		{"wrong key", [][]byte{sign(t, otherKey, "device-7", 1, signedNow, "hello")}, errlog.CloseUnauthenticated},
		{"tampered signature", [][]byte{flip(good(1))}, errlog.CloseUnauthenticated},
		{"tampered body", [][]byte{append(good(1), '!')}, errlog.CloseUnauthenticated},
		{"tampered sequence", [][]byte{[]byte(strings.Replace(string(good(1)), " 1 ", " 2 ", 1))}, errlog.CloseUnauthenticated},
		{"unknown key id", [][]byte{sign(t, deviceKey, "stranger", 1, signedNow, "hello")}, errlog.CloseUnauthenticated},
		{"key id changes", [][]byte{good(1), sign(t, otherKey, "device-8", 2, signedNow, "hello")}, errlog.CloseUnauthenticated},
		{"replayed sequence", [][]byte{good(1), good(1)}, errlog.ClosePolicyViolation},
		{"sequence going back", [][]byte{good(5), good(4)}, errlog.ClosePolicyViolation},
		{"sequence zero", [][]byte{good(0)}, errlog.ClosePolicyViolation},
		{"too old", [][]byte{sign(t, deviceKey, "device-7", 1, signedNow.Add(-validate.DefaultSkew-time.Millisecond), "hello")}, errlog.ClosePolicyViolation},
		{"too far ahead", [][]byte{sign(t, deviceKey, "device-7", 1, signedNow.Add(validate.DefaultSkew+time.Millisecond), "hello")}, errlog.ClosePolicyViolation},
		{"key store fails", [][]byte{sign(t, deviceKey, "flaky", 1, signedNow, "hello")}, errlog.CloseTryAgainLater},
		{"key too short", [][]byte{sign(t, deviceKey, "short", 1, signedNow, "hello")}, errlog.CloseInternalError},
		// The key store's own network errors are not this peer leaving.
		{"key store dial error", [][]byte{sign(t, deviceKey, "dial-error", 1, signedNow, "hello")}, errlog.CloseInternalError},
		{"key store EOF", [][]byte{sign(t, deviceKey, "eof", 1, signedNow, "hello")}, errlog.CloseInternalError},
		{"key store plain error", [][]byte{sign(t, deviceKey, "plain-error", 1, signedNow, "hello")}, errlog.CloseInternalError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, url)
			for _, m := range tt.msgs[:len(tt.msgs)-1] {
				sendBytes(t, c, m)
				read(t, c)
			}
			sendBytes(t, c, tt.msgs[len(tt.msgs)-1])
			if got := closeStatus(t, c); got != tt.want {
				t.Errorf("close %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSignedReplayAcrossConnections pins what the documentation says of
// replays: a captured message is refused again on its own connection, is
// admitted once on another connection while its timestamp is within the
// skew, and is refused everywhere after.
func TestSignedReplayAcrossConnections(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(signedNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, string(m.Data))
	})
	url := serve(t, wsguard.NewChain(validate.Signed(keys, validate.WithSignedClock(clock))).Then(echo), new(wstest.Logs))
	captured := sign(t, deviceKey, "device-7", 1, signedNow, "pay 10")

	a := dial(t, url)
	sendBytes(t, a, captured)
	if got := read(t, a); got != "pay 10" {
		t.Fatalf("first delivery: %q", got)
	}
	sendBytes(t, a, captured)
	if got := closeStatus(t, a); got != errlog.ClosePolicyViolation {
		t.Errorf("replay on its own connection: close %v, want 1008", got)
	}

	for i := range 2 {
		b := dial(t, url)
		sendBytes(t, b, captured)
		if got := read(t, b); got != "pay 10" {
			t.Errorf("replay %d on a new connection within the skew: %q, want it admitted as documented", i, got)
		}
		sendBytes(t, b, captured)
		if got := closeStatus(t, b); got != errlog.ClosePolicyViolation {
			t.Errorf("second replay %d on the same new connection: close %v, want 1008", i, got)
		}
	}

	now.Add(int64(validate.DefaultSkew + time.Millisecond))
	c := dial(t, url)
	sendBytes(t, c, captured)
	if got := closeStatus(t, c); got != errlog.ClosePolicyViolation {
		t.Errorf("replay past the skew: close %v, want 1008", got)
	}
}

// TestSignedSubject checks that a connection authenticated as someone
// cannot sign with another principal's key.
func TestSignedSubject(t *testing.T) {
	t.Parallel()
	asAlice := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(wsguard.WithSubject(r.Context(), "device-7")))
		})
	}
	url := signedServer(t, wsguard.WithHandshake(asAlice))
	t.Run("own key", func(t *testing.T) {
		t.Parallel()
		c := dial(t, url)
		sendBytes(t, c, sign(t, deviceKey, "device-7", 1, signedNow, "hi"))
		if got := read(t, c); !strings.HasPrefix(got, "device-7|hi|") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("another principal's key", func(t *testing.T) {
		t.Parallel()
		c := dial(t, url)
		sendBytes(t, c, sign(t, otherKey, "device-8", 1, signedNow, "hi"))
		if got := closeStatus(t, c); got != errlog.CloseUnauthenticated {
			t.Errorf("close %v, want 4401", got)
		}
	})
}

func TestSign(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		key   []byte
		keyID string
		ts    time.Time
	}{
		{"empty key id", deviceKey, "", signedNow},
		{"space in key id", deviceKey, "device 7", signedNow},
		{"newline in key id", deviceKey, "device\n7", signedNow},
		{"long key id", deviceKey, strings.Repeat("k", 129), signedNow},
		{"short key", []byte("0123456789abcde"), "device-7", signedNow},
		{"before 1970", deviceKey, "device-7", time.Unix(-1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := validate.Sign(tt.key, tt.keyID, 1, tt.ts, nil); err == nil {
				t.Error("Sign succeeded")
			}
		})
	}
}

func TestSignedPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func()
	}{
		{"nil keys", func() { validate.Signed(nil) }},
		{"zero skew", func() { validate.Signed(keys, validate.WithSkew(0)) }},
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
