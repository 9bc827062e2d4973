package validate

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestParseSigned(t *testing.T) {
	t.Parallel()
	good, err := Sign(testKey, "device-7", 42, time.UnixMilli(1767225600000), []byte("body\nwith lines"))
	if err != nil {
		t.Fatal(err)
	}
	sig := string(good[:sigLen])
	env, err := parseSigned(good)
	if err != nil {
		t.Fatalf("parse %q: %v", good, err)
	}
	if string(env.keyID) != "device-7" || env.seq != 42 || env.ts != 1767225600000 || string(good[env.body:]) != "body\nwith lines" {
		t.Errorf("parsed %+v", env)
	}

	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"no signature", "WSG1 device-7 1 1\nbody"},
		{"short signature", sig[:42] + " WSG1 device-7 1 1\n"},
		{"padded signature", sig[:42] + "= WSG1 device-7 1 1\n"},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(sig[:42]) + "+ WSG1 device-7 1 1\n"},
		{"non-zero padding bits", sig[:42] + "B WSG1 device-7 1 1\n"},
		{"two spaces", sig + "  WSG1 device-7 1 1\n"},
		{"other version", sig + " WSG2 device-7 1 1\n"},
		{"lower-case tag", sig + " wsg1 device-7 1 1\n"},
		{"empty key id", sig + " WSG1  1 1\n"},
		{"key id with a slash", sig + " WSG1 dev/7 1 1\n"},
		{"key id with a tab", sig + " WSG1 dev\t7 1 1\n"},
		{"key id too long", sig + " WSG1 " + strings.Repeat("k", 129) + " 1 1\n"},
		{"no sequence", sig + " WSG1 device-7  1\n"},
		{"signed sequence", sig + " WSG1 device-7 +1 1\n"},
		{"leading zero", sig + " WSG1 device-7 01 1\n"},
		{"sequence overflow", sig + " WSG1 device-7 18446744073709551616 1\n"},
		{"sequence too long", sig + " WSG1 device-7 " + strings.Repeat("1", 21) + " 1\n"},
		{"negative time", sig + " WSG1 device-7 1 -1\n"},
		{"fractional time", sig + " WSG1 device-7 1 1.5\n"},
		{"time too long", sig + " WSG1 device-7 1 " + strings.Repeat("1", 17) + "\n"},
		{"CRLF", sig + " WSG1 device-7 1 1\r\n"},
		{"no line feed", sig + " WSG1 device-7 1 1"},
		{"extra field", sig + " WSG1 device-7 1 1 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if env, err := parseSigned([]byte(tt.in)); err == nil {
				t.Errorf("parsed %q as %+v", tt.in, env)
			}
		})
	}

	limits := []struct {
		name string
		in   string
	}{
		{"128-byte key id", sig + " WSG1 " + strings.Repeat("k", 128) + " 1 1\n"},
		{"every key id character", sig + " WSG1 azAZ09-._~@:+= 1 1\n"},
		{"largest sequence", sig + " WSG1 device-7 18446744073709551615 1\n"},
		{"zero time", sig + " WSG1 device-7 1 0\n"},
		{"16-digit time", sig + " WSG1 device-7 1 " + strings.Repeat("9", 16) + "\n"},
		{"empty body", sig + " WSG1 device-7 1 1\n"},
	}
	for _, tt := range limits {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := parseSigned([]byte(tt.in)); err != nil {
				t.Errorf("rejected %q: %v", tt.in, err)
			}
		})
	}
}

// FuzzParseSigned checks that the parser never panics, that what it
// accepts is in canonical form (re-encoding the parsed fields gives the
// same header), and that Sign's output always parses back.
func FuzzParseSigned(f *testing.F) {
	good, _ := Sign(testKey, "device-7", 42, time.UnixMilli(1767225600000), []byte(`{"type":"say"}`))
	f.Add(good, "device-7", uint64(42), int64(1767225600000), []byte("x"))
	f.Add([]byte("A B"), "k", uint64(0), int64(0), []byte(nil))
	f.Fuzz(func(t *testing.T, data []byte, keyID string, seq uint64, ms int64, body []byte) {
		if env, err := parseSigned(data); err == nil {
			msg, err := Sign(testKey, string(env.keyID), env.seq, time.UnixMilli(env.ts), data[env.body:])
			if err != nil {
				t.Fatalf("parsed %q but cannot re-sign it: %v", data, err)
			}
			if !bytes.Equal(msg[sigLen:], data[sigLen:]) {
				t.Fatalf("parsed %q, re-encoded as %q", data, msg)
			}
		}
		msg, err := Sign(testKey, keyID, seq, time.UnixMilli(ms), body)
		if err != nil {
			return
		}
		env, err := parseSigned(msg)
		if err != nil {
			t.Fatalf("Sign produced %q, which does not parse: %v", msg, err)
		}
		if string(env.keyID) != keyID || env.seq != seq || env.ts != ms || !bytes.Equal(msg[env.body:], body) {
			t.Fatalf("round trip of %q gave %+v", msg, env)
		}
	})
}
