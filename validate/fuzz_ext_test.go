package validate_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// FuzzUnmarshal checks the strict decoder against encoding/json: it never
// panics, accepts only valid JSON no deeper than the limit whose result
// passes the rules, and rejects everything else with a recoverable error
// whose offset lies within the message.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		valid + `}`,
		valid + `,"id":7,"age":120,"items":[{"email":"a@b.co"}],"labels":{"k":"v"},"any":[1,{"x":null}]}`,
		valid + `,"room":"x"}`,
		valid + `,"age":300}`,
		valid + `} {}`,
		`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"room":"\u0000\ud800","email":"a@b"}`,
		"",
	} {
		f.Add([]byte(s))
	}
	v := newValidator(validate.WithMaxDepth(8))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		err := v.Unmarshal(data, &s)
		if err == nil {
			if !json.Valid(data) {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			var tree any
			if json.Unmarshal(data, &tree) == nil && depth(tree) > 8 {
				t.Fatalf("accepted %q, nested deeper than 8", data)
			}
			if err := v.Struct(&s); err != nil {
				t.Fatalf("accepted %q, which fails the rules: %v", data, err)
			}
			return
		}
		if errlog.CodeOf(err) != errlog.InvalidArgument {
			t.Fatalf("%q: %v is not recoverable", data, err)
		}
		var rp wsguard.Replier
		if !errors.As(err, &rp) {
			t.Fatalf("%q: %v has no reply", data, err)
		}
		if off := rp.Reply().Offset; off != nil && (*off < 0 || *off > int64(len(data))) {
			t.Fatalf("%q: offset %d out of range", data, *off)
		}
	})
}

func depth(v any) int {
	d := 0
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			d = max(d, depth(e))
		}
	case map[string]any:
		for _, e := range v {
			d = max(d, depth(e))
		}
	default:
		return 0
	}
	return d + 1
}
