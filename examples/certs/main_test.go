package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun: the files are written where -out says, for the hosts asked,
// and bad arguments are errors.
func TestRun(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new")
	var out bytes.Buffer
	if err := run([]string{"-out", dir, "-hosts", "localhost, 10.0.0.1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got := pair.Leaf.DNSNames; len(got) != 1 || got[0] != "localhost" {
		t.Errorf("DNS names %q", got)
	}
	if got := pair.Leaf.IPAddresses; len(got) != 1 || got[0].String() != "10.0.0.1" {
		t.Errorf("IP addresses %v", got)
	}
	if !strings.Contains(out.String(), "-ca "+filepath.Join(dir, "ca.pem")) {
		t.Errorf("output does not say how to trust the CA:\n%s", out.String())
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no hosts", []string{"-out", t.TempDir(), "-hosts", " , "}, `-hosts " , " names no host`},
		{"extra argument", []string{"-out", t.TempDir(), "x"}, `unexpected arguments ["x"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := run(tc.args, io.Discard, io.Discard); err == nil || err.Error() != tc.want {
				t.Fatalf("run = %v, want %q", err, tc.want)
			}
		})
	}
}
