package validate

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeOptions make the decoder strict. The rest of the strictness is
// json v2's default: duplicate keys and invalid UTF-8 are syntax errors,
// names match case-sensitively (encoding/json would let "EMAIL" fill
// "email", and so smuggle a second value past a duplicate check), numbers
// that do not fit their field and data after the value are errors.
var decodeOptions = json.JoinOptions(json.RejectUnknownMembers(true))

// precheck rejects, before the decoder runs, what it would accept or
// reach too late: a message that is not an object, and nesting deeper than
// the limit (json v2's own limit is 10000 and cannot be lowered).
func (v *Validator) precheck(data []byte) error {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return invalidJSON("expected a JSON object", int64(i))
	}
	if off := tooDeep(data, v.maxDepth); off >= 0 {
		return invalidJSON("nesting too deep", int64(off))
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// tooDeep returns the offset of the bracket that opens level max+1 of
// data, or -1. Nesting cannot be deeper than the number of opening
// brackets, which bytes.Count finds with SIMD, so a typical message is
// never walked byte by byte. The walk only needs to be right for valid
// JSON: the decoder rejects anything else afterwards.
func tooDeep(data []byte, max int) int {
	if bytes.Count(data, []byte{'{'})+bytes.Count(data, []byte{'['}) <= max {
		return -1
	}
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			if depth > max {
				return i
			}
		case '}', ']':
			depth--
		}
	}
	return -1
}

// decode unmarshals data into dst strictly; root is the type whose
// fields name the errors.
func decode(data []byte, dst any, root reflect.Type) error {
	err := json.Unmarshal(data, dst, decodeOptions)
	if err == nil {
		return nil
	}
	return decodeError(data, err, root)
}

// decodeError classifies a json v2 error. json v2's own messages quote
// the offending names and values, so none of its text is kept: only the
// kind of failure, the offset and the path through the server's struct.
func decodeError(data []byte, err error, root reflect.Type) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return invalidJSON("unexpected end of JSON", int64(len(data)))
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return invalidJSON("duplicate key", syn.ByteOffset)
		case syn.JSONPointer == "" && syn.ByteOffset > 0 && jsontext.Value(bytes.TrimSpace(data[:syn.ByteOffset])).IsValid():
			return invalidJSON("data after the JSON object", syn.ByteOffset)
		}
		return invalidJSON("malformed JSON", syn.ByteOffset)
	}
	var sem *json.SemanticError
	if !errors.As(err, &sem) {
		// An UnmarshalJSON method of the application's failed; its text
		// may quote the value.
		return invalidValue("invalid value", -1)
	}
	if errors.Is(sem.Err, json.ErrUnknownName) {
		return invalidValue("unknown field", sem.ByteOffset)
	}
	fe := fieldError{field: fieldPath(root, sem.JSONPointer.Tokens())}
	switch {
	case errors.Is(sem.Err, strconv.ErrRange):
		fe.rule = RuleRange
	case sem.Err == nil, errors.Is(sem.Err, strconv.ErrSyntax):
		fe.rule, fe.param = RuleType, expectedType(sem.GoType)
	default:
		fe.rule = RuleInvalid
	}
	return invalidFields([]fieldError{fe}, sem.ByteOffset)
}
