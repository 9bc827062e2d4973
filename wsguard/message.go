package wsguard

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"

	"github.com/coder/websocket"
)

// MessageType is the type of a data message.
type MessageType = websocket.MessageType

// Message types.
const (
	MessageText   = websocket.MessageText
	MessageBinary = websocket.MessageBinary
)

// Message is one data message. It and its Data are valid only until the
// handler returns: the buffer is reused for the next message, so copy what
// must outlive the call.
type Message struct {
	Type MessageType
	Data []byte

	newHash func() hash.Hash
	h       hash.Hash
	sum     [64]byte
	digest  string
}

// Digest returns the hex digest (SHA-256 unless configured otherwise with
// [WithDigest]) of the message's data. It is computed on the first call
// only, so that logs can name a message without its content and nobody pays
// for it when nobody asks.
func (m *Message) Digest() string {
	if m.digest == "" {
		if m.h == nil {
			m.h = m.newHasher()
		}
		m.h.Reset()
		m.h.Write(m.Data)
		m.digest = hex.EncodeToString(m.h.Sum(m.sum[:0]))
	}
	return m.digest
}

// newHasher returns the server's hash, or SHA-256 for a message built
// outside a server (by a test or a middleware).
func (m *Message) newHasher() hash.Hash {
	if m.newHash == nil {
		return sha256.New()
	}
	return m.newHash()
}

func (m *Message) reset(t MessageType, data []byte) {
	m.Type, m.Data, m.digest = t, data, ""
}
