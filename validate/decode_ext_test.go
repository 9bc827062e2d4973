package validate_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

type profile struct {
	Name string `json:"name" validate:"required,max=20"`
}

type item struct {
	Email string `json:"email" validate:"required,email"`
}

type base struct {
	ID int `json:"id" validate:"gte=0"`
}

// sample exercises every kind of field the decoder and the rules meet.
type sample struct {
	base
	Room    string            `json:"room" validate:"required,alphanum,max=16"`
	Email   string            `json:"email" validate:"required,email"`
	Age     int8              `json:"age" validate:"gte=0,lte=120"`
	Score   float32           `json:"score"`
	Big     float64           `json:"big"`
	Count   uint              `json:"count"`
	Color   string            `json:"color" validate:"omitempty,oneof=red green"`
	Nick    string            `json:"nick" validate:"omitempty,nickname"`
	Profile *profile          `json:"profile"`
	Items   []item            `json:"items" validate:"max=3,dive"`
	Labels  map[string]string `json:"labels" validate:"dive,max=8"`
	At      time.Time         `json:"at"`
	Blob    []byte            `json:"blob"`
	Any     any               `json:"any"`
}

// nickname is a custom rule: lower-case letters only.
func nickname(fl validator.FieldLevel) bool {
	s := fl.Field().String()
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz") == ""
}

func newValidator(opts ...validate.Option) *validate.Validator {
	return validate.New(append([]validate.Option{validate.WithRule("nickname", nickname)}, opts...)...)
}

// replyOf returns the error reply a server would send for err, checking
// that err is the recoverable kind.
func replyOf(t *testing.T, err error) wsguard.ErrorReply {
	t.Helper()
	if c := errlog.CodeOf(err); c != errlog.InvalidArgument {
		t.Fatalf("code = %v, want invalid_argument (err %v)", c, err)
	}
	var rp wsguard.Replier
	if !errors.As(err, &rp) {
		t.Fatalf("%v does not implement wsguard.Replier", err)
	}
	return rp.Reply()
}

// wantReply is an expected error reply; at is the text whose offset in
// the input the reply must carry ("" for no offset, "$" for the end).
type wantReply struct {
	code    string
	message string
	at      string
	fields  []wsguard.FieldError
}

func (w wantReply) check(t *testing.T, in string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted %q", in)
	}
	got := replyOf(t, err)
	if got.Code != w.code || got.Message != w.message {
		t.Errorf("reply %q %q, want %q %q", got.Code, got.Message, w.code, w.message)
	}
	switch w.at {
	case "":
		if got.Offset != nil {
			t.Errorf("offset %d, want none", *got.Offset)
		}
	default:
		want := int64(len(in))
		if w.at != "$" {
			want = int64(strings.LastIndex(in, w.at))
		}
		if got.Offset == nil {
			t.Errorf("no offset, want %d", want)
		} else if *got.Offset != want {
			t.Errorf("offset %d, want %d", *got.Offset, want)
		}
	}
	if !reflect.DeepEqual(got.Fields, w.fields) {
		t.Errorf("fields %+v, want %+v", got.Fields, w.fields)
	}
	// Neither the reply nor the log text may repeat what was sent.
	reply, _ := json.Marshal(got)
	for _, s := range []string{string(reply), err.Error()} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("%q echoes the submitted data", s)
		}
	}
}

func invalidJSON(message, at string) wantReply {
	return wantReply{code: validate.CodeInvalidJSON, message: message, at: at}
}

func fields(at string, fs ...wsguard.FieldError) wantReply {
	return wantReply{code: validate.CodeInvalidArgument, at: at, fields: fs}
}

func field(name, rule, param string) wsguard.FieldError {
	return wsguard.FieldError{Field: name, Rule: rule, Param: param}
}

const valid = `{"room":"lobby","email":"ada@example.com"`

func TestUnmarshalAccepts(t *testing.T) {
	t.Parallel()
	v := newValidator()
	tests := []struct {
		name string
		in   string
		want sample
	}{
		{"minimal", valid + `}`, sample{Room: "lobby", Email: "ada@example.com"}},
		{"whitespace around", " \n\t" + valid + "} \r\n", sample{Room: "lobby", Email: "ada@example.com"}},
		{"null leaves zero", valid + `,"profile":null,"age":null}`, sample{Room: "lobby", Email: "ada@example.com"}},
		{"every field", valid + `,"id":7,"age":120,"score":1.5,"big":1e300,"count":3,"color":"red","nick":"ada",` +
			`"profile":{"name":"Ada"},"items":[{"email":"a@b.co"}],"labels":{"k":"v"},"at":"2026-01-01T00:00:00Z","blob":"AQI=","any":[1,{"x":null}]}`,
			sample{
				base: base{ID: 7}, Room: "lobby", Email: "ada@example.com", Age: 120, Score: 1.5, Big: 1e300, Count: 3,
				Color: "red", Nick: "ada", Profile: &profile{Name: "Ada"}, Items: []item{{Email: "a@b.co"}},
				Labels: map[string]string{"k": "v"}, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Blob: []byte{1, 2},
				Any: []any{1.0, map[string]any{"x": nil}},
			}},
		{"brackets in strings are not nesting", `{"room":"lobby","email":"ada@example.com","labels":{"k":"[[[[{{{{"}}`,
			sample{Room: "lobby", Email: "ada@example.com", Labels: map[string]string{"k": "[[[[{{{{"}}},
		{"escaped quote in string", `{"room":"lobby","email":"ada@example.com","labels":{"k":"\"[[\\"}}`,
			sample{Room: "lobby", Email: "ada@example.com", Labels: map[string]string{"k": `"[[\`}}},
		{"depth 32", valid + `,"any":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`,
			sample{Room: "lobby", Email: "ada@example.com", Any: nest(30)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got sample
			if err := v.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// nest returns n+1 nested empty arrays as decoded into an any.
func nest(n int) any {
	v := []any{}
	for range n {
		v = []any{v}
	}
	return v
}

func TestUnmarshalRejects(t *testing.T) {
	t.Parallel()
	v := newValidator()
	tests := []struct {
		name string
		in   string
		want wantReply
	}{
		// Not one JSON object.
		{"empty", ``, invalidJSON("expected a JSON object", "$")},
		{"only whitespace", " \n ", invalidJSON("expected a JSON object", "$")},
		{"array", `["SECRET"]`, invalidJSON("expected a JSON object", "[")},
		{"null", `null`, invalidJSON("expected a JSON object", "null")},
		{"string", ` "SECRET"`, invalidJSON("expected a JSON object", `"SECRET`)},
		{"trailing object", valid + `} {"SECRET":1}`, invalidJSON("data after the JSON object", `{"SECRET`)},
		{"trailing garbage", valid + `}SECRET`, invalidJSON("data after the JSON object", "SECRET")},
		{"trailing comma", valid + `,}`, invalidJSON("malformed JSON", ",}")},
		{"single quotes", `{'room':'SECRET'}`, invalidJSON("malformed JSON", "'room")},
		{"truncated", valid + `,"nick":"SECR`, invalidJSON("unexpected end of JSON", "$")},
		{"control character in string", "{\"room\":\"SEC\x01RET\"}", invalidJSON("malformed JSON", "\x01")},
		{"invalid UTF-8", "{\"room\":\"SECRET\xff\"}", invalidJSON("malformed JSON", "\xff")},

		// Duplicate keys, at any depth and in any letter case encoding/json would merge.
		{"duplicate key", valid + `,"room":"SECRET"}`, invalidJSON("duplicate key", `"room":"SECRET"`)},
		{"duplicate nested key", valid + `,"profile":{"name":"a","name":"SECRET"}}`, invalidJSON("duplicate key", `"name":"SECRET"`)},
		{"duplicate map key", valid + `,"labels":{"k":"a","k":"SECRET"}}`, invalidJSON("duplicate key", `"k":"SECRET"`)},
		{"duplicate by escape", valid + `,"r\u006fom":"SECRET"}`, invalidJSON("duplicate key", `"r\u006fom"`)},

		// Nesting.
		{"depth 33", valid + `,"any":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`,
			invalidJSON("nesting too deep", `[]`)},
		{"deep inside unknown member", `{"SECRET":` + strings.Repeat(`{"a":`, 31) + `{"b":1` + strings.Repeat("}", 32) + `}`,
			invalidJSON("nesting too deep", `{"b"`)},

		// Members the struct does not have.
		{"unknown member", valid + `,"SECRET":1}`, wantReply{code: validate.CodeInvalidArgument, message: "unknown field", at: `"SECRET"`}},
		{"unknown member by case", `{"Room":"SECRET","email":"ada@example.com"}`, wantReply{code: validate.CodeInvalidArgument, message: "unknown field", at: `"Room"`}},
		{"unknown nested member", valid + `,"profile":{"name":"a","SECRET":1}}`, wantReply{code: validate.CodeInvalidArgument, message: "unknown field", at: `"SECRET"`}},

		// Values that do not fit their field.
		{"string for integer", valid + `,"age":"SECRET"}`, fields(`"SECRET"`, field("age", validate.RuleType, "integer"))},
		{"fraction for integer", valid + `,"age":1.5}`, fields("1.5", field("age", validate.RuleType, "integer"))},
		{"exponent for integer", valid + `,"age":1e2}`, fields("1e2", field("age", validate.RuleType, "integer"))},
		{"int8 overflow", valid + `,"age":300}`, fields("300", field("age", validate.RuleRange, ""))},
		{"int8 underflow", valid + `,"age":-129}`, fields("-129", field("age", validate.RuleRange, ""))},
		{"negative for unsigned", valid + `,"count":-1}`, fields("-1", field("count", validate.RuleType, "integer"))},
		{"uint overflow", valid + `,"count":18446744073709551616}`, fields("18446744073709551616", field("count", validate.RuleRange, ""))},
		{"float32 overflow", valid + `,"score":1e39}`, fields("1e39", field("score", validate.RuleRange, ""))},
		{"float64 overflow", valid + `,"big":1e400}`, fields("1e400", field("big", validate.RuleRange, ""))},
		{"float64 overflow in any", valid + `,"any":[1e400]}`, fields("1e400", field("any", validate.RuleRange, ""))},
		{"boolean for string", valid + `,"color":true}`, fields("true", field("color", validate.RuleType, "string"))},
		{"object for string", valid + `,"color":{"SECRET":1}}`, fields(`{"SECRET`, field("color", validate.RuleType, "string"))},
		{"string for object", valid + `,"profile":"SECRET"}`, fields(`"SECRET"`, field("profile", validate.RuleType, "object"))},
		{"object for array", valid + `,"items":{}}`, fields(`{}}`, field("items", validate.RuleType, "array"))},
		{"wrong type in element", valid + `,"items":[{"email":"a@b.co"},{"email":5}]}`, fields("5}", field("items[1].email", validate.RuleType, "string"))},
		{"wrong type in map value", valid + `,"labels":{"SECRET":5}}`, fields("5}", field("labels", validate.RuleType, "string"))},
		{"unparsable time", valid + `,"at":"SECRET"}`, fields(`"SECRET"`, field("at", validate.RuleInvalid, ""))},
		{"number for time", valid + `,"at":5}`, fields(`5}`, field("at", validate.RuleType, "string"))},
		{"bad base64", valid + `,"blob":"SECRET!"}`, fields(`"SECRET!"`, field("blob", validate.RuleInvalid, ""))},

		// Rules.
		{"required", `{}`, fields("", field("room", "required", ""), field("email", "required", ""))},
		{"email", `{"room":"lobby","email":"SECRET"}`, fields("", field("email", "email", ""))},
		{"email without domain", `{"room":"lobby","email":"SECRET@"}`, fields("", field("email", "email", ""))},
		{"max with param", `{"room":"SECRETSECRETSECRET1","email":"ada@example.com"}`, fields("", field("room", "max", "16"))},
		{"alphanum", `{"room":"SECRET room","email":"ada@example.com"}`, fields("", field("room", "alphanum", ""))},
		{"lte", valid + `,"age":121}`, fields("", field("age", "lte", "120"))},
		{"oneof", valid + `,"color":"SECRET"}`, fields("", field("color", "oneof", "red green"))},
		{"custom rule", valid + `,"nick":"SECRET"}`, fields("", field("nick", "nickname", ""))},
		{"embedded field", valid + `,"id":-1}`, fields("", field("id", "gte", "0"))},
		{"nested struct", valid + `,"profile":{}}`, fields("", field("profile.name", "required", ""))},
		{"slice element", valid + `,"items":[{"email":"a@b.co"},{"email":"SECRET"}]}`, fields("", field("items[1].email", "email", ""))},
		{"slice length", valid + `,"items":[{"email":"a@b.co"},{"email":"a@b.co"},{"email":"a@b.co"},{"email":"a@b.co"}]}`, fields("", field("items", "max", "3"))},
		{"map value, key not echoed", valid + `,"labels":{"SECRET":"SECRETSECRET"}}`, fields("", field("labels", "max", "8"))},
		{"several at once", `{"room":"SECRET!","email":"SECRET","age":-1}`,
			fields("", field("room", "alphanum", ""), field("email", "email", ""), field("age", "gte", "0"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got sample
			tt.want.check(t, tt.in, v.Unmarshal([]byte(tt.in), &got))
		})
	}
}

func TestMaxDepth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		depth int
		in    string
		want  *wantReply
	}{
		{"object at the limit", 2, valid + `,"profile":{"name":"a"}}`, nil},
		{"array of objects over the limit", 2, valid + `,"items":[{"email":"a@b.co"}]}`, &wantReply{code: validate.CodeInvalidJSON, message: "nesting too deep", at: `{"email"`}},
		{"array of objects at the limit", 3, valid + `,"items":[{"email":"a@b.co"}]}`, nil},
		{"top level only", 1, valid + `,"profile":{"name":"a"}}`, &wantReply{code: validate.CodeInvalidJSON, message: "nesting too deep", at: `{"name"`}},
		{"brackets in strings do not count", 1, `{"room":"lobby","email":"ada@example.com","nick":"{{[["}`, &wantReply{code: validate.CodeInvalidArgument, fields: []wsguard.FieldError{field("nick", "nickname", "")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newValidator(validate.WithMaxDepth(tt.depth))
			var got sample
			err := v.Unmarshal([]byte(tt.in), &got)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			tt.want.check(t, tt.in, err)
		})
	}
}

func TestUnmarshalTarget(t *testing.T) {
	t.Parallel()
	v := newValidator()
	var s sample
	tests := []struct {
		name string
		dst  any
	}{
		{"nil", nil},
		{"struct value", s},
		{"pointer to map", &map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := v.Unmarshal([]byte(valid+`}`), tt.dst); errlog.CodeOf(err) != errlog.Internal {
				t.Errorf("err = %v, want an internal error", err)
			}
		})
	}
}

func TestStruct(t *testing.T) {
	t.Parallel()
	v := newValidator()
	tests := []struct {
		name string
		in   any
		want []wsguard.FieldError
	}{
		{"valid value", sample{Room: "lobby", Email: "ada@example.com"}, nil},
		{"valid pointer", &sample{Room: "lobby", Email: "ada@example.com"}, nil},
		{"invalid", &sample{Room: "lobby", Email: "SECRET", Items: []item{{}}}, []wsguard.FieldError{
			field("email", "email", ""), field("items[0].email", "required", ""),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Struct(tt.in)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			wantReply{code: validate.CodeInvalidArgument, fields: tt.want}.check(t, "", err)
		})
	}
	if err := v.Struct(42); errlog.CodeOf(err) != errlog.Internal {
		t.Errorf("Struct(42) = %v, want an internal error", err)
	}
}

func TestNewPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  validate.Option
	}{
		{"zero depth", validate.WithMaxDepth(0)},
		{"empty rule tag", validate.WithRule("", nickname)},
		{"nil rule", validate.WithRule("nick", nil)},
		{"reserved rule tag", validate.WithRule("omitempty", nickname)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			validate.New(tt.opt)
		})
	}
}
