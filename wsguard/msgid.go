package wsguard

import (
	"bytes"
	"encoding/json"
)

// MaxMessageIDLen is the longest correlation id, in bytes of its JSON
// text, that is echoed.
const MaxMessageIDLen = 64

// MessageID is a message's correlation id: the value of its top-level
// "id" member, as JSON text (`"a1"`, `42`), which a client sets to tell
// which message a reply answers. Only a bounded, plain id is one: a
// string of 1 to 62 letters, digits and "-_.:" (a UUID, a counter, a
// nanoid), or an integer of at most 20 digits. Anything else is no id, so
// that echoing it cannot carry a client's payload into a page or a log.
//
// The zero MessageID is no id; it marshals as null and an `omitempty`
// field of this type is left out. The server's error reply for a message
// carries its id ([ErrorReply]); a handler puts it in its own replies.
type MessageID string

// MarshalJSON implements json.Marshaler.
func (id MessageID) MarshalJSON() ([]byte, error) {
	if id == "" {
		return []byte("null"), nil
	}
	return []byte(id), nil
}

// ParseMessageID returns the id that the JSON value raw is, and whether
// it is one (see [MessageID]).
func ParseMessageID(raw []byte) (MessageID, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || len(raw) > MaxMessageIDLen {
		return "", false
	}
	if raw[0] == '"' {
		if len(raw) < 3 || raw[len(raw)-1] != '"' {
			return "", false
		}
		for _, b := range raw[1 : len(raw)-1] {
			if !idByte(b) {
				return "", false
			}
		}
		return MessageID(raw), true
	}
	digits := raw
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 20 || (len(digits) > 1 && digits[0] == '0') {
		return "", false
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return "", false
		}
	}
	return MessageID(raw), true
}

func idByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '_' || b == '.' || b == ':'
}

// ID returns the message's correlation id, or "" when it has none: when
// it is not a JSON object, has no top-level "id" member (matched exactly,
// and only once), or the member is not a [MessageID]. It parses the
// message on each call.
func (m *Message) ID() MessageID {
	if m.Type != MessageText {
		return ""
	}
	return messageID(m.Data)
}

func messageID(data []byte) MessageID {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	var id MessageID
	seen := false
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		if k != "id" {
			continue
		}
		if seen {
			return "" // a duplicate: which one the client meant is unknown
		}
		seen = true
		id, _ = ParseMessageID(v)
	}
	return id
}
