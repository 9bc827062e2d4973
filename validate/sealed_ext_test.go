package validate_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// The server's keys, made once for the package's tests: an EC key, a
// shared key, and an EC key of the same kid that is not the server's.
var (
	sealEC       = newECKey("srv-ec-1")
	sealShared   = newSharedKey("srv-dir-1", bytes.Repeat([]byte{7}, 32))
	sealImpostor = newECKey("srv-ec-1")
	sealStranger = newECKey("stranger")
	sealKeys     = keySet(sealEC, sealShared)
)

func newECKey(kid string) jwk.Key {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := jwk.Import(pk)
	if err != nil {
		panic(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		panic(err)
	}
	return k
}

func newSharedKey(kid string, raw []byte) jwk.Key {
	k, err := jwk.Import(raw)
	if err != nil {
		panic(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		panic(err)
	}
	return k
}

func keySet(keys ...jwk.Key) jwk.Set {
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			panic(err)
		}
	}
	return set
}

func publicOf(t testing.TB, k jwk.Key) jwk.Key {
	t.Helper()
	if _, ok := k.(jwk.SymmetricKey); ok {
		return k
	}
	pub, err := jwk.PublicKeyOf(k)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func sealClient(t testing.TB, server jwk.Key) *validate.SealClient {
	t.Helper()
	c, err := validate.NewSealClient(publicOf(t, server), func() time.Time { return signedNow })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func seal(t testing.TB, c *validate.SealClient, body string) []byte {
	t.Helper()
	msg, err := c.Seal([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// sealedServer answers each message with a sealed reply carrying what the
// handler behind Sealed saw: the body and the digest.
func sealedServer(t *testing.T, logs *wstest.Logs, opts ...wsguard.Option) string {
	t.Helper()
	s := validate.NewSealed(sealKeys, validate.WithSignedClock(func() time.Time { return signedNow }))
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return s.Send(ctx, c, []byte(string(m.Data)+"|"+m.Digest()))
	})
	return serve(t, wsguard.NewChain(s.Middleware).Then(h), logs, opts...)
}

func TestSealedRoundTrip(t *testing.T) {
	t.Parallel()
	for _, key := range []jwk.Key{sealEC, sealShared} {
		kid, _ := key.KeyID()
		t.Run(kid, func(t *testing.T) {
			t.Parallel()
			logs := new(wstest.Logs)
			conn := dial(t, sealedServer(t, logs))
			client := sealClient(t, key)
			for i, body := range []string{`{"type":"say","text":"top secret"}`, "", strings.Repeat("x", 20<<10)} {
				msg := seal(t, client, body)
				sendBytes(t, conn, msg)
				reply, err := client.Open([]byte(read(t, conn)))
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if want := body + "|" + digest(string(msg)); string(reply) != want {
					t.Errorf("message %d: reply %.80q, want %.80q", i, reply, want)
				}
			}
		})
	}
}

// TestSealedLogsCiphertextOnly checks that a refused sealed message is
// logged by the digest of what was received, with nothing of the
// plaintext, and that the client is told only the code's short text.
func TestSealedLogsCiphertextOnly(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	conn := dial(t, sealedServer(t, logs))
	client := sealClient(t, sealEC)
	first := seal(t, client, "the plaintext password hunter2")
	sendBytes(t, conn, first)
	if _, err := client.Open([]byte(read(t, conn))); err != nil {
		t.Fatal(err)
	}
	sendBytes(t, conn, first) // a replay
	_, err := tryRead(conn)
	if got := websocket.CloseStatus(err); got != errlog.ClosePolicyViolation {
		t.Fatalf("close %v, want 1008", got)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Reason != "policy violation" {
		t.Errorf("close reason %q, want the code's short text", ce.Reason)
	}
	lines := logs.WaitFor(t, "connection closed", 5*time.Second)
	if got := lines[0][errlog.KeyPayload]; got != digest(string(first)) {
		t.Errorf("logged digest %v, want the ciphertext's %s", got, digest(string(first)))
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Errorf("the plaintext reached the log: %s", logs.String())
	}
}

// jweWith encrypts plaintext as compact JWE with the given algorithms and
// extra protected header members, bypassing the client's profile.
func jweWith(t testing.TB, alg jwa.KeyEncryptionAlgorithm, enc jwa.ContentEncryptionAlgorithm, key any, kid string, extra map[string]any, opts ...jwe.EncryptOption) []byte {
	t.Helper()
	return jweOf(t, plaintext(1, signedNow, "hello"), alg, enc, key, kid, extra, opts...)
}

func jweOf(t testing.TB, pt string, alg jwa.KeyEncryptionAlgorithm, enc jwa.ContentEncryptionAlgorithm, key any, kid string, extra map[string]any, opts ...jwe.EncryptOption) []byte {
	t.Helper()
	h := jwe.NewHeaders()
	if kid != "" {
		if err := h.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range extra {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if k, ok := key.(jwk.Key); ok {
		// The raw key: jwx would put a jwk.Key's own kid in the header.
		var raw any
		if err := jwk.Export(publicOf(t, k), &raw); err != nil {
			t.Fatal(err)
		}
		key = raw
	}
	opts = append([]jwe.EncryptOption{jwe.WithKey(alg, key), jwe.WithContentEncryption(enc), jwe.WithProtectedHeaders(h), jwe.WithCompact()}, opts...)
	out, err := jwe.Encrypt([]byte(pt), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// plaintext is a sealed payload for the server.
func plaintext(seq uint64, ts time.Time, body string) string {
	return "WSE1 c " + strconv.FormatUint(seq, 10) + " " + strconv.FormatInt(ts.UnixMilli(), 10) + "\n" + body
}

// payload seals an arbitrary payload with the shared key, as a client
// that knows it could.
func payload(t testing.TB, pt string) []byte {
	t.Helper()
	var raw []byte
	if err := jwk.Export(sealShared, &raw); err != nil {
		t.Fatal(err)
	}
	h := jwe.NewHeaders()
	if err := h.Set(jwk.KeyIDKey, "srv-dir-1"); err != nil {
		t.Fatal(err)
	}
	out, err := jwe.Encrypt([]byte(pt), jwe.WithKey(jwa.DIRECT(), raw), jwe.WithContentEncryption(jwa.A256GCM()), jwe.WithProtectedHeaders(h), jwe.WithCompact())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withHeader replaces the protected header of a compact JWE.
func withHeader(t testing.TB, msg []byte, header string) []byte {
	t.Helper()
	_, rest, _ := bytes.Cut(msg, []byte{'.'})
	return append([]byte(base64.RawURLEncoding.EncodeToString([]byte(header))+"."), rest...)
}

func headerOf(t testing.TB, msg []byte) map[string]any {
	t.Helper()
	h, _, _ := bytes.Cut(msg, []byte{'.'})
	raw, err := base64.RawURLEncoding.DecodeString(string(h))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The refusals' log texts: the log says which check failed, the client
// is never told.
const (
	errForm     = "not a compact JWE in the sealed profile"
	errHeader   = "protected header outside the sealed profile"
	errAlg      = "algorithm is not the key's"
	errOpen     = "does not decrypt with the key"
	errInner    = "malformed sealed payload"
	errKid      = "unknown key id"
	errKidMoved = "key id is not the one the connection started with"
	errReplyKey = "reply key is not the one the connection started with"
	errNoReply  = "carries no reply key"
	errSeq      = "sequence number did not increase"
	errTS       = "timestamp outside the window"
)

// loggedErr returns the err of the log line that names msg by its digest.
func loggedErr(t *testing.T, logs *wstest.Logs, msg []byte) string {
	t.Helper()
	want := digest(string(msg))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range logs.Lines(t) {
			if l[errlog.KeyPayload] == want {
				s, _ := l[errlog.KeyErr].(string)
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line for the message's digest %s", want)
	return ""
}

func TestSealedRejects(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	url := sealedServer(t, logs, wsguard.WithReadLimit(64<<10))
	var shared []byte
	if err := jwk.Export(sealShared, &shared); err != nil {
		t.Fatal(err)
	}
	a256 := jwa.A256GCM()

	// good returns the messages of a fresh client of key, in order.
	good := func(key jwk.Key, n int) [][]byte {
		c := sealClient(t, key)
		var out [][]byte
		for range n {
			out = append(out, seal(t, c, "hello"))
		}
		return out
	}
	ecMsg := good(sealEC, 1)[0]
	flip := func(msg []byte, part int) []byte {
		msg = bytes.Clone(msg)
		i := 0
		for range part {
			i += bytes.IndexByte(msg[i:], '.') + 1
		}
		if msg[i] == 'A' {
			msg[i] = 'B'
		} else {
			msg[i] = 'A'
		}
		return msg
	}
	hdr := headerOf(t, ecMsg)
	header := func(change func(map[string]any)) []byte {
		h := map[string]any{}
		for k, v := range hdr {
			h[k] = v
		}
		change(h)
		return withHeader(t, ecMsg, mustJSON(t, h))
	}
	otherReply, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherRpk := func() map[string]any {
		b := otherReply.PublicKey().Bytes()
		return map[string]any{"kty": "EC", "crv": "P-256",
			"x": base64.RawURLEncoding.EncodeToString(b[1:33]), "y": base64.RawURLEncoding.EncodeToString(b[33:])}
	}
	ecTwo := good(sealEC, 2)
	dirTwo := good(sealShared, 2)
	parts := strings.Split(string(ecMsg), ".")

	tests := []struct {
		name string
		msgs [][]byte // all but the last must be accepted
		want websocket.StatusCode
		why  string // in the log line of the refused message; "" for the server's own refusals, which cannot name it
	}{
		{"not a JWE", [][]byte{[]byte(`{"type":"say"}`)}, errlog.ClosePolicyViolation, errForm},
		{"four parts", [][]byte{[]byte(strings.Join(parts[:4], "."))}, errlog.ClosePolicyViolation, errForm},
		{"six parts", [][]byte{[]byte(string(ecMsg) + ".AAAA")}, errlog.ClosePolicyViolation, errForm},
		{"JSON serialization", [][]byte{[]byte(`{"protected":"` + parts[0] + `","encrypted_key":"` + parts[1] + `","iv":"` + parts[2] + `","ciphertext":"` + parts[3] + `","tag":"` + parts[4] + `"}`)}, errlog.ClosePolicyViolation, errForm},
		{"two recipients", [][]byte{twoRecipients(t)}, errlog.ClosePolicyViolation, errForm},
		{"padded base64", [][]byte{[]byte(parts[0] + "=." + strings.Join(parts[1:], "."))}, errlog.ClosePolicyViolation, errForm},
		{"zip header", [][]byte{jweWith(t, jwa.DIRECT(), a256, shared, "srv-dir-1", nil, jwe.WithCompress(jwa.Deflate()))}, errlog.ClosePolicyViolation, errHeader},
		{"crit header", [][]byte{header(func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 })}, errlog.ClosePolicyViolation, errHeader},
		{"jwk header", [][]byte{header(func(h map[string]any) { h["jwk"] = h["epk"] })}, errlog.ClosePolicyViolation, errHeader},
		{"header name in another case", [][]byte{header(func(h map[string]any) { h["KID"] = h["kid"]; delete(h, "kid") })}, errlog.ClosePolicyViolation, errHeader},
		{"duplicate header member", [][]byte{withHeader(t, ecMsg, `{"alg":"dir","alg":"ECDH-ES+A256KW","enc":"A256GCM","kid":"srv-ec-1","epk":`+mustJSON(t, hdr["epk"])+`}`)}, errlog.ClosePolicyViolation, errHeader},
		{"oversized header", [][]byte{header(func(h map[string]any) { h["kid"] = strings.Repeat("k", 2000) })}, errlog.ClosePolicyViolation, errForm},
		{"unknown kid", [][]byte{good(sealStranger, 1)[0]}, errlog.ClosePolicyViolation, errKid},
		{"no kid", [][]byte{header(func(h map[string]any) { delete(h, "kid") })}, errlog.ClosePolicyViolation, errKid},
		{"dir with the EC key's kid", [][]byte{jweWith(t, jwa.DIRECT(), a256, shared, "srv-ec-1", nil)}, errlog.ClosePolicyViolation, errAlg},
		{"ECDH-ES with the shared key's kid", [][]byte{jweWith(t, jwa.ECDH_ES_A256KW(), a256, sealEC, "srv-dir-1", nil)}, errlog.ClosePolicyViolation, errAlg},
		{"bare ECDH-ES", [][]byte{jweWith(t, jwa.ECDH_ES(), a256, sealEC, "srv-ec-1", nil)}, errlog.ClosePolicyViolation, errAlg},
		{"A128GCM content", [][]byte{jweWith(t, jwa.ECDH_ES_A256KW(), jwa.A128GCM(), sealEC, "srv-ec-1", nil)}, errlog.ClosePolicyViolation, errAlg},
		// Its IV is 16 bytes: refused by the form before the header.
		{"CBC-HMAC content", [][]byte{jweWith(t, jwa.DIRECT(), jwa.A128CBC_HS256(), shared, "srv-dir-1", nil)}, errlog.ClosePolicyViolation, errForm},
		{"epk on another curve", [][]byte{header(func(h map[string]any) {
			epk := h["epk"].(map[string]any)
			h["epk"] = map[string]any{"kty": "EC", "crv": "P-384", "x": epk["x"], "y": epk["y"]}
		})}, errlog.ClosePolicyViolation, errHeader},
		{"epk with a private part", [][]byte{header(func(h map[string]any) {
			epk := h["epk"].(map[string]any)
			h["epk"] = map[string]any{"kty": "EC", "crv": "P-256", "x": epk["x"], "y": epk["y"], "d": epk["x"]}
		})}, errlog.ClosePolicyViolation, errHeader},
		{"epk off the curve", [][]byte{header(func(h map[string]any) {
			epk := h["epk"].(map[string]any)
			h["epk"] = map[string]any{"kty": "EC", "crv": "P-256", "x": epk["x"], "y": epk["x"]}
		})}, errlog.ClosePolicyViolation, errHeader},
		{"tampered header", [][]byte{header(func(h map[string]any) { h["rpk"] = otherRpk() })}, errlog.ClosePolicyViolation, errOpen},
		{"tampered encrypted key", [][]byte{flip(ecMsg, 1)}, errlog.ClosePolicyViolation, errOpen},
		{"tampered IV", [][]byte{flip(ecMsg, 2)}, errlog.ClosePolicyViolation, errOpen},
		{"tampered ciphertext", [][]byte{flip(ecMsg, 3)}, errlog.ClosePolicyViolation, errOpen},
		{"tampered tag", [][]byte{flip(ecMsg, 4)}, errlog.ClosePolicyViolation, errOpen},
		{"another key of the same kid", [][]byte{good(sealImpostor, 1)[0]}, errlog.ClosePolicyViolation, errOpen},
		{"replayed", [][]byte{ecMsg, ecMsg}, errlog.ClosePolicyViolation, errSeq},
		{"sequence going back", [][]byte{dirTwo[1], dirTwo[0]}, errlog.ClosePolicyViolation, errSeq},
		{"sequence zero", [][]byte{payload(t, plaintext(0, signedNow, "hello"))}, errlog.ClosePolicyViolation, errSeq},
		{"too old", [][]byte{payload(t, plaintext(1, signedNow.Add(-validate.DefaultSkew-time.Millisecond), "hello"))}, errlog.ClosePolicyViolation, errTS},
		{"too far ahead", [][]byte{payload(t, plaintext(1, signedNow.Add(validate.DefaultSkew+time.Millisecond), "hello"))}, errlog.ClosePolicyViolation, errTS},
		{"server's direction", [][]byte{payload(t, strings.Replace(plaintext(1, signedNow, "hello"), " c ", " s ", 1))}, errlog.ClosePolicyViolation, errInner},
		{"unversioned payload", [][]byte{payload(t, "hello")}, errlog.ClosePolicyViolation, errInner},
		{"leading zero in sequence", [][]byte{payload(t, strings.Replace(plaintext(1, signedNow, "hello"), " 1 ", " 01 ", 1))}, errlog.ClosePolicyViolation, errInner},
		{"kid changes", [][]byte{ecTwo[0], dirTwo[1]}, errlog.ClosePolicyViolation, errKidMoved},
		{"reply key changes", [][]byte{ecTwo[0], jweOf(t, plaintext(2, signedNow, "hello"), jwa.ECDH_ES_A256KW(), a256, sealEC, "srv-ec-1", map[string]any{"rpk": otherRpk()})}, errlog.ClosePolicyViolation, errReplyKey},
		{"first EC message without a reply key", [][]byte{ecTwo[1]}, errlog.ClosePolicyViolation, errNoReply},
		// Without a reply key, a later message does not change the pinned one.
		{"no reply key after the first", [][]byte{ecTwo[0], ecTwo[1], jweOf(t, plaintext(3, signedNow, "hello"), jwa.ECDH_ES_A256KW(), a256, sealEC, "srv-ec-1", map[string]any{"rpk": otherRpk()})}, errlog.ClosePolicyViolation, errReplyKey},
		{"over the read limit", [][]byte{seal(t, sealClient(t, sealShared), strings.Repeat("x", 64<<10))}, errlog.CloseMessageTooBig, ""},
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
			if tt.why == "" {
				return
			}
			if err := loggedErr(t, logs, tt.msgs[len(tt.msgs)-1]); !strings.Contains(err, tt.why) {
				t.Errorf("logged %q, want it to say %q", err, tt.why)
			}
		})
	}
}

// twoRecipients is a JSON-serialized JWE for the EC key and the shared
// key at once.
func twoRecipients(t testing.TB) []byte {
	t.Helper()
	var shared []byte
	if err := jwk.Export(sealShared, &shared); err != nil {
		t.Fatal(err)
	}
	out, err := jwe.Encrypt([]byte(plaintext(1, signedNow, "hello")),
		jwe.WithKey(jwa.ECDH_ES_A256KW(), publicOf(t, sealEC)),
		jwe.WithKey(jwa.A256KW(), shared),
		jwe.WithContentEncryption(jwa.A256GCM()),
		jwe.WithJSON())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSealedReplayAcrossConnections pins what the documentation says of
// replays, as for Signed: a captured message is refused again on its own
// connection and admitted once on another while its timestamp is within
// the skew.
func TestSealedReplayAcrossConnections(t *testing.T) {
	t.Parallel()
	url := sealedServer(t, new(wstest.Logs))
	client := sealClient(t, sealShared)
	captured := seal(t, client, "pay 10")
	a := dial(t, url)
	sendBytes(t, a, captured)
	read(t, a)
	sendBytes(t, a, captured)
	if got := closeStatus(t, a); got != errlog.ClosePolicyViolation {
		t.Errorf("replay on its own connection: close %v, want 1008", got)
	}
	b := dial(t, url)
	sendBytes(t, b, captured)
	if _, err := client.Open([]byte(read(t, b))); err != nil {
		t.Errorf("replay on a new connection within the skew: %v, want it admitted as documented", err)
	}
}

func TestSealClientOpenRejects(t *testing.T) {
	t.Parallel()
	url := sealedServer(t, new(wstest.Logs))
	// replies returns the first n sealed replies a fresh client of key gets.
	replies := func(client *validate.SealClient, n int) [][]byte {
		c := dial(t, url)
		var out [][]byte
		for range n {
			sendBytes(t, c, seal(t, client, "hi"))
			out = append(out, []byte(read(t, c)))
		}
		return out
	}
	ecClient := sealClient(t, sealEC)
	ecReplies := replies(ecClient, 2)
	dirClient := sealClient(t, sealShared)
	dirReplies := replies(dirClient, 2)
	if _, err := ecClient.Open(ecReplies[1]); err != nil {
		t.Fatalf("a reply in order: %v", err)
	}
	tests := []struct {
		name   string
		client *validate.SealClient
		msg    []byte
	}{
		{"replayed reply", ecClient, ecReplies[1]},
		{"older reply", ecClient, ecReplies[0]},
		{"reply for another client", sealClient(t, sealEC), replies(sealClient(t, sealEC), 1)[0]},
		{"client's own message reflected", dirClient, seal(t, sealClient(t, sealShared), "hi")},
		{"EC reply to a shared-key client", sealClient(t, sealShared), ecReplies[0]},
		{"shared-key reply to an EC client", sealClient(t, sealEC), dirReplies[0]},
		{"not a JWE", dirClient, []byte("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if body, err := tt.client.Open(tt.msg); err == nil {
				t.Errorf("opened: %q", body)
			}
		})
	}
}

func TestSealedSendBeforeFirstMessage(t *testing.T) {
	t.Parallel()
	s := validate.NewSealed(sealKeys)
	got := make(chan error, 1)
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		got <- s.Send(ctx, c, []byte("too early"))
		return nil
	})
	c := dial(t, serve(t, h, new(wstest.Logs)))
	send(t, c, "plain")
	if err := <-got; err == nil {
		t.Error("Send succeeded on a connection with no sealed message yet")
	}
}

func TestNewSealedPanics(t *testing.T) {
	t.Parallel()
	ec := newECKey("x")
	if err := ec.Set(jwk.AlgorithmKey, jwa.ECDH_ES()); err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k384, err := jwk.Import(p384)
	if err != nil {
		t.Fatal(err)
	}
	_ = k384.Set(jwk.KeyIDKey, "p384")
	noKid, err := jwk.Import(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  jwk.Set
		want string
	}{
		{"nil set", nil, "validate: NewSealed(nil, ...): needs at least one key"},
		{"empty set", jwk.NewSet(), "validate: NewSealed(empty set, ...): needs at least one key"},
		{"no kid", keySet(noKid), `validate: NewSealed(key 0): needs a "kid"`},
		{"kid twice", keySet(newSharedKey("a", bytes.Repeat([]byte{1}, 32)), newSharedKey("a", bytes.Repeat([]byte{2}, 32))), `validate: NewSealed(kid "a"): kid used twice`},
		{"short shared key", keySet(newSharedKey("a", bytes.Repeat([]byte{1}, 16))), `validate: NewSealed(kid "a"): symmetric keys must be 32 bytes`},
		{"P-384", keySet(k384), `validate: NewSealed(kid "p384"): EC keys must be on P-256`},
		{"public key only", keySet(publicOf(t, sealEC)), `validate: NewSealed(kid "srv-ec-1"): a *ecdsa.PublicKey is neither`},
		{"alg of another algorithm", keySet(ec), `validate: NewSealed(kid "x"): the key's alg "ECDH-ES" is not "ECDH-ES+A256KW"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := panicText(func() { validate.NewSealed(tt.set) }); !strings.HasPrefix(got, tt.want) {
				t.Errorf("panic %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("zero skew", func(t *testing.T) {
		t.Parallel()
		if got := panicText(func() { validate.NewSealed(sealKeys, validate.WithSkew(0)) }); got != "validate: WithSkew(0s): must be > 0" {
			t.Errorf("panic %q", got)
		}
	})
}

func TestNewSealClientRejects(t *testing.T) {
	t.Parallel()
	noKid, err := jwk.PublicKeyOf(newECKey("x"))
	if err != nil {
		t.Fatal(err)
	}
	_ = noKid.Remove(jwk.KeyIDKey)
	tests := []struct {
		name string
		key  jwk.Key
	}{
		{"nil", nil},
		{"no kid", noKid},
		{"short shared key", newSharedKey("a", []byte("0123456789abcdef"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := validate.NewSealClient(tt.key, nil); err == nil {
				t.Error("NewSealClient succeeded")
			}
		})
	}
}

// TestSealedConcurrentSend pushes sealed messages from several goroutines
// at once: the client must receive them in sequence order, or it would
// refuse the late ones as replays.
func TestSealedConcurrentSend(t *testing.T) {
	t.Parallel()
	const pushers, each = 8, 10
	s := validate.NewSealed(sealKeys, validate.WithSignedClock(func() time.Time { return signedNow }))
	h := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		var wg sync.WaitGroup
		for range pushers {
			wg.Go(func() {
				for range each {
					if err := s.Send(c.Context(), c, []byte("push")); err != nil {
						t.Errorf("push: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		return nil
	})
	for _, key := range []jwk.Key{sealEC, sealShared} {
		kid, _ := key.KeyID()
		t.Run(kid, func(t *testing.T) {
			t.Parallel()
			conn := dial(t, serve(t, wsguard.NewChain(s.Middleware).Then(h), new(wstest.Logs)))
			client := sealClient(t, key)
			sendBytes(t, conn, seal(t, client, "start"))
			for i := range pushers * each {
				if _, err := client.Open([]byte(read(t, conn))); err != nil {
					t.Fatalf("push %d: %v", i, err)
				}
			}
		})
	}
}
