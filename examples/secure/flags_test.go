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
		{[]string{"-read-limit", "0"}, "wsguard: WithReadLimit(0): must be between 1 and 1 GiB"},
		{[]string{"-rate", "0"}, "wsguard: WithMessageRate(0, 200): the rate must be a finite number > 0"},
		{[]string{"-burst", "-1"}, "wsguard: WithMessageRate(100, -1): the burst must be >= 1"},
		{[]string{"-max-conns-per-ip", "0"}, "wsguard: WithMaxConns(10000, 0): both caps must be >= 1"},
		{[]string{"-idle-timeout", "-1s"}, "wsguard: WithIdleTimeout(-1s): must be >= 0 (0: no idle timeout)"},
		{[]string{"-ping-interval", "-1s"}, "wsguard: WithPingInterval(-1s): must be >= 0 (0: no pings)"},
		{[]string{"-origins", "*"}, `wsguard: WithOrigins("*"): origin pattern "*": the host has no label without a wildcard`},
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
