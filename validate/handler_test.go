package validate

import (
	"bytes"
	"testing"
)

// FuzzMessageType checks that the Router's fast path for the "type"
// member agrees with the full parse whenever it answers.
func FuzzMessageType(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","room":"lobby"}`,
		` {"type":"say"}`,
		`{"type":"s\u0061y"}`,
		`{"type":"","x":1}`,
		`{"type":"say","type":"join"}`,
		`{"type":"say`,
		`{"x":1,"type":"say"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ferr := messageType(data)
		slow, serr := slowMessageType(data)
		if ferr != nil || serr != nil {
			return // the strict decode after either settles the message
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("%q: fast path read type %q, full parse %q", data, fast, slow)
		}
	})
}
