// Package client holds wsguard.js, a dependency-free ES module that does
// what every browser page on a wsguard endpoint needs: the token in the
// subprotocol, refresh in band, a reconnect policy by close code, typed
// JSON messages and the server's error replies, and optionally signed
// envelopes for validate.Signed. Pages copy the file or load it from a
// server that serves [Handler]; the module's header documents its API.
package client

import (
	_ "embed"
	"net/http"
)

// Module is the source of wsguard.js.
//
//go:embed wsguard.js
var Module string

// Handler serves [Module] as JavaScript, for a page to import.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(Module))
	})
}
