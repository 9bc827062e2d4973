package validate

import (
	"encoding"
	"iter"
	"reflect"
	"strconv"
	"strings"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// Reply codes of the errors this package returns. All are
// errlog.InvalidArgument to the server: answered, counted as a strike,
// never a disconnect on their own.
const (
	// CodeInvalidJSON: the message is not one well-formed JSON object
	// within the limits (depth, duplicate keys, trailing data). The reply
	// carries the byte offset of the problem.
	CodeInvalidJSON = "invalid_json"
	// CodeInvalidArgument: the JSON is well formed but does not fit the
	// message's struct or its rules. The reply lists the failed fields.
	CodeInvalidArgument = "invalid_argument"
	// CodeUnknownType: no handler is registered for the message's "type"
	// (a [Router] built [WithUnknownTypeReply]).
	CodeUnknownType = "unknown_type"
)

// Rules reported in field errors for values that could not be decoded into
// their field at all, beside validator's own rule names ("required",
// "email", "max", ...).
const (
	// RuleType: the JSON value has the wrong type for the field; the param
	// names the expected JSON type ("string", "integer", "number",
	// "boolean", "object", "array").
	RuleType = "type"
	// RuleRange: the number does not fit the field's Go type.
	RuleRange = "range"
	// RuleInvalid: the value has the right JSON type but not a form the
	// field accepts (a timestamp that does not parse, bad base64).
	RuleInvalid = "invalid"
	// RuleDuplicate: a query parameter given more than once for a field
	// that holds one value.
	RuleDuplicate = "duplicate"
)

// replyError is a rejected message or query. Its Error text and its reply
// are built from fixed strings, the server's own field names and offsets:
// never from the submitted data, which may be a secret, an attack on the
// log, or an attack on the page that shows the reply.
type replyError struct {
	code    string
	message string
	offset  int64 // < 0: not known
	fields  []fieldError
}

type fieldError struct {
	field, rule, param string
}

// invalidJSON returns an InvalidArgument error replying CodeInvalidJSON.
func invalidJSON(message string, offset int64) error {
	return errlog.NewError(errlog.InvalidArgument, &replyError{code: CodeInvalidJSON, message: message, offset: offset})
}

// invalidValue returns an InvalidArgument error replying
// CodeInvalidArgument with a message and no field.
func invalidValue(message string, offset int64) error {
	return errlog.NewError(errlog.InvalidArgument, &replyError{code: CodeInvalidArgument, message: message, offset: offset})
}

// invalidFields returns an InvalidArgument error replying
// CodeInvalidArgument with a field list.
func invalidFields(fields []fieldError, offset int64) error {
	return errlog.NewError(errlog.InvalidArgument, &replyError{code: CodeInvalidArgument, offset: offset, fields: fields})
}

func (e *replyError) Error() string {
	var b strings.Builder
	if e.code == CodeInvalidJSON {
		b.WriteString("invalid JSON: ")
	}
	b.WriteString(e.message)
	if e.offset >= 0 {
		b.WriteString(" at offset ")
		b.WriteString(strconv.FormatInt(e.offset, 10))
	}
	for i, f := range e.fields {
		if i == 0 {
			b.WriteString("fields ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(f.field)
		b.WriteString(" (")
		b.WriteString(f.rule)
		if f.param != "" {
			b.WriteByte('=')
			b.WriteString(f.param)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Reply implements wsguard.Replier.
func (e *replyError) Reply() wsguard.ErrorReply {
	r := wsguard.ErrorReply{Type: "error", Code: e.code, Message: e.message}
	if e.offset >= 0 {
		off := e.offset
		r.Offset = &off
	}
	if len(e.fields) > 0 {
		r.Fields = make([]wsguard.FieldError, len(e.fields))
		for i, f := range e.fields {
			r.Fields[i] = wsguard.FieldError{Field: f.field, Rule: f.rule, Param: f.param}
		}
	}
	return r
}

// fieldPath turns a path into root (a JSON pointer's tokens, or
// validator's namespace) into the dotted form the client sees
// ("items[2].email"). It follows struct fields by their JSON names and
// slice indices, and stops at anything else: a map key, or a name the
// struct does not have, was chosen by the client and is not repeated back
// to it.
func fieldPath(root reflect.Type, tokens iter.Seq[string]) string {
	var b strings.Builder
	t := root
	for tok := range tokens {
		t = indirect(t)
		switch t.Kind() {
		case reflect.Struct:
			ft, ok := fieldByJSONName(t, tok)
			if !ok {
				return b.String()
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
			t = ft
		case reflect.Slice, reflect.Array:
			if !isIndex(tok) {
				return b.String()
			}
			b.WriteByte('[')
			b.WriteString(tok)
			b.WriteByte(']')
			t = t.Elem()
		default:
			return b.String()
		}
	}
	return b.String()
}

// fieldByJSONName finds the exported field of struct t that JSON calls
// name, looking into inlined (embedded) structs as the decoder does.
func fieldByJSONName(t reflect.Type, name string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		switch jsonName(f) {
		case name:
			return f.Type, true
		case "":
			if ft, ok := fieldByJSONName(indirect(f.Type), name); ok {
				return ft, true
			}
		}
	}
	return nil, false
}

func isIndex(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// namespaceTokens splits validator's namespace ("items[2].email") into
// tokens. Only the tokens before a map key are ever used, so a key that
// contains '.' or ']' cannot mislead fieldPath.
func namespaceTokens(ns string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for len(ns) > 0 {
			var tok string
			switch ns[0] {
			case '.':
				ns = ns[1:]
				continue
			case '[':
				end := strings.IndexByte(ns, ']')
				if end < 0 {
					return
				}
				tok, ns = ns[1:end], ns[end+1:]
			default:
				end := strings.IndexAny(ns, ".[")
				if end < 0 {
					end = len(ns)
				}
				tok, ns = ns[:end], ns[end:]
			}
			if !yield(tok) {
				return
			}
		}
	}
}

// namespacePath is fieldPath for a validator namespace.
func namespacePath(root reflect.Type, ns string) string {
	return fieldPath(root, namespaceTokens(ns))
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[interface{ UnmarshalJSON([]byte) error }]()
)

// expectedType names the JSON type a Go type decodes from, for the param
// of a RuleType field error.
func expectedType(t reflect.Type) string {
	if t == nil {
		return ""
	}
	t = indirect(t)
	pt := reflect.PointerTo(t)
	switch {
	case pt.Implements(textUnmarshalerType):
		return "string"
	case pt.Implements(jsonUnmarshalerType):
		return "" // the type decides what it accepts
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string" // base64
		}
		return "array"
	case reflect.Array:
		return "array"
	}
	return ""
}
