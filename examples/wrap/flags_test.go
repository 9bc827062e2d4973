package main

import (
	"io"
	"testing"
)

// TestBadFlagsAreErrors: a flag the server would refuse is reported by
// parseFlags as an error naming it, not a panic at start-up.
func TestBadFlagsAreErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-handshake-rate", "0"}, "wsguard: WithHandshakeRate(0, 20): the rate must be a finite number > 0"},
		{[]string{"-handshake-burst", "0"}, "wsguard: WithHandshakeRate(10, 0): the burst must be >= 1"},
		{[]string{"-max-conns", "0"}, "wsguard: WithMaxConns(0, 100): both caps must be >= 1"},
		{[]string{"-tls-cert", "cert.pem"}, "-tls-cert and -tls-key go together: set both to serve wss://, or neither for ws://"},
		{[]string{"-tls-key", "key.pem"}, "-tls-cert and -tls-key go together: set both to serve wss://, or neither for ws://"},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			t.Parallel()
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("parseFlags(%q) = %v, want %q", tt.args, err, tt.want)
			}
		})
	}
}
