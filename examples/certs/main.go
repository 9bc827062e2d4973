// Command certs makes a private CA and a certificate signed by it, for
// running the examples over wss:// on a development machine, with Go's
// crypto/x509 and nothing to download:
//
//	go run ./examples/certs -out tls
//	go run ./examples/secure -tls-cert tls/cert.pem -tls-key tls/key.pem
//
// It writes, into the -out directory (created if needed):
//
//   - ca.pem: the CA certificate, for clients to trust
//     (go run ./examples/secure/client -ca tls/ca.pem);
//   - cert.pem: the server certificate for -hosts, then the CA's;
//   - key.pem: the server certificate's key, readable by its owner only.
//
// The CA's own key is never written, so nothing else can be signed with
// it once the command ends; run it again for a new CA and pair. Trust
// ca.pem only where you test: it is a CA.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wsguard/kit/internal/localca"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "tls", "directory to write ca.pem, cert.pem and key.pem into")
	hosts := fs.String("hosts", "localhost,127.0.0.1,::1", "comma-separated names and IP addresses the certificate is for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var names []string
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("-hosts %q names no host", *hosts)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	f, err := localca.WriteDir(*out, names...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "certs: CA %s, certificate %s (for %s, until %s), key %s\n",
		f.CAFile, f.CertFile, strings.Join(names, ", "), f.Leaf.Cert.NotAfter.Format("2006-01-02"), f.KeyFile)
	fmt.Fprintf(stdout, "certs: serve with -tls-cert %s -tls-key %s; trust the CA with -ca %s\n", f.CertFile, f.KeyFile, f.CAFile)
	fmt.Fprintf(stdout, "certs: Chromium without installing the CA: --ignore-certificate-errors-spki-list=%s\n", f.Leaf.SPKIHash())
	return nil
}
