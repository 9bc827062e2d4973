package validate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/wsguard/kit/wsguard"
)

// Query returns a handshake guard that decodes the request's query string
// into a T (a struct) and validates it with v, so that the parameters a
// client can put in the WebSocket URL get the same scrutiny as its
// messages. Parameters are named like JSON members (the field's json
// tag). Accepted field types are string, bool, the integer and float
// kinds, and slices of them (a repeated parameter); every other parameter
// must appear at most once.
//
// A request with a malformed query, an unknown parameter, a value that
// does not parse or fit, or a failed rule gets HTTP 400 with the same
// JSON error reply a message would get:
//
//	{"type":"error","code":"invalid_argument","fields":[{"field":"room","rule":"required"}]}
//
// and one log line, without the query (it may carry credentials), to the
// request's logger (wsguard.LoggerFrom: the server's, for a guard
// installed with wsguard.WithHandshake). The
// handler behind the guard, and the connection's handlers after the
// upgrade, read the value with [QueryFrom]. Query panics on a nil v and
// when T is not a struct or has a field of another type.
func Query[T any](v *Validator) func(http.Handler) http.Handler {
	q := newQueryDecoder(structType[T]("Query"))
	if v == nil {
		misconfigured(fmt.Sprintf("Query[%v](nil)", q.root), "needs a Validator")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var t T
			err := q.decode(r.URL.RawQuery, reflect.ValueOf(&t).Elem())
			if err == nil {
				err = v.check(&t, q.root)
			}
			if err != nil {
				wsguard.Reject(w, r, nil, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), queryKey[T]{}, t)))
		})
	}
}

type queryKey[T any] struct{}

// QueryFrom returns the query parameters decoded by [Query] for the same
// T, and whether there were any. A connection's context carries them.
func QueryFrom[T any](ctx context.Context) (T, bool) {
	t, ok := ctx.Value(queryKey[T]{}).(T)
	return t, ok
}

type queryField struct {
	index []int
	typ   reflect.Type // the element type for a slice
	slice bool
}

type queryDecoder struct {
	root   reflect.Type
	fields map[string]queryField
}

func newQueryDecoder(root reflect.Type) *queryDecoder {
	q := &queryDecoder{root: root, fields: make(map[string]queryField)}
	q.add(root, nil)
	return q
}

// add registers the fields of struct t, found at index prefix, inlining
// embedded structs as JSON does.
func (q *queryDecoder) add(t reflect.Type, prefix []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Tag.Get("json") == "-" {
			continue
		}
		index := append(slices.Clone(prefix), i)
		name := jsonName(f)
		if name == "" {
			if f.Type.Kind() != reflect.Struct {
				panic(fmt.Sprintf("validate: Query[%v]: embedded %v must be a struct, not a pointer", q.root, f.Type))
			}
			q.add(f.Type, index)
			continue
		}
		qf := queryField{index: index, typ: f.Type}
		if f.Type.Kind() == reflect.Slice {
			qf.slice, qf.typ = true, f.Type.Elem()
		}
		if !scalarKind(qf.typ.Kind()) {
			panic(fmt.Sprintf("validate: Query[%v]: field %s of type %v cannot come from a query string", q.root, f.Name, f.Type))
		}
		q.fields[name] = qf
	}
}

func scalarKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

var errQueryValue = errors.New("not a value of the field's type")

// decode fills dst from the raw query. Like the JSON decoder it rejects
// rather than guesses: url.ParseQuery fails on bad escapes and ';' where
// url.Values would drop them, an unknown name is refused, and a repeated
// name is refused for a single-valued field.
func (q *queryDecoder) decode(raw string, dst reflect.Value) error {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return invalidValue("malformed query", -1)
	}
	var fields []fieldError
	for name, vs := range vals {
		f, ok := q.fields[name]
		if !ok {
			return invalidValue("unknown parameter", -1)
		}
		if !f.slice && len(vs) > 1 {
			fields = append(fields, fieldError{field: name, rule: RuleDuplicate})
			continue
		}
		fv := dst.FieldByIndex(f.index)
		if f.slice {
			fv.Set(reflect.MakeSlice(fv.Type(), len(vs), len(vs)))
		}
		for i, s := range vs {
			ev := fv
			if f.slice {
				ev = fv.Index(i)
			}
			if err := setScalar(ev, s); err != nil {
				fe := fieldError{field: name, rule: RuleType, param: expectedType(f.typ)}
				if errors.Is(err, strconv.ErrRange) {
					fe.rule, fe.param = RuleRange, ""
				} else if f.typ.Kind() == reflect.String {
					fe.rule, fe.param = RuleInvalid, ""
				}
				fields = append(fields, fe)
				break
			}
		}
	}
	if len(fields) > 0 {
		slices.SortFunc(fields, func(a, b fieldError) int { return cmp.Compare(a.field, b.field) })
		return invalidFields(fields, -1)
	}
	return nil
}

// setScalar parses s into v, as strictly as JSON would: "true" or
// "false" only, no NaN or infinities, no out-of-range numbers, valid UTF-8.
func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(s) {
			return errQueryValue
		}
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return errQueryValue
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errQueryValue
		}
		v.SetFloat(f)
	}
	return nil
}
