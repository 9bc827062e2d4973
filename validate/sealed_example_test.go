package validate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// A server that opens sealed messages and seals its replies, and a Go
// client that talks to it. Only ciphertext crosses the wire, in both
// directions.
func ExampleSealed() {
	// The server's key pair, made once and kept; its kid names it in
	// every message, so that a new key can be added beside it.
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := jwk.Import(pk)
	_ = key.Set(jwk.KeyIDKey, "2026-12")
	keys := jwk.NewSet()
	_ = keys.AddKey(key)

	sealed := validate.NewSealed(keys)
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		// m.Data is the plaintext; the server's log names the message by
		// the digest of its ciphertext.
		return sealed.Send(ctx, c, []byte("got "+string(m.Data)))
	})
	srv := wsguard.New(wsguard.NewChain(sealed.Middleware).Then(h))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	// The client knows the server's public key (published as a JWK).
	pub, _ := jwk.PublicKeyOf(key)
	client, err := validate.NewSealClient(pub, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.CloseNow()

	msg, _ := client.Seal([]byte(`{"type":"pay","amount":10}`))
	fmt.Println("compact JWE parts:", strings.Count(string(msg), ".")+1)
	_ = conn.Write(ctx, websocket.MessageText, msg)
	_, reply, _ := conn.Read(ctx)
	body, err := client.Open(reply)
	fmt.Println(string(body), err)
	// Output:
	// compact JWE parts: 5
	// got {"type":"pay","amount":10} <nil>
}
