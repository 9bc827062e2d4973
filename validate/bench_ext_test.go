package validate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/go-playground/validator/v10"

	"github.com/wsguard/kit/validate"
)

// benchMsg is a chat-like message: short fields, a text, a list.
type benchMsg struct {
	Room  string   `json:"room" validate:"required,alphanum,max=32"`
	Email string   `json:"email" validate:"required,email"`
	Text  string   `json:"text" validate:"max=20000"`
	Tags  []string `json:"tags" validate:"max=64,dive,alphanum,max=16"`
	Items []item   `json:"items" validate:"max=512,dive"`
}

// benchMessages are the messages the decoders are compared on, about
// 60 B, 1 KiB and 16 KiB.
func benchMessages() []struct {
	name string
	data []byte
} {
	build := func(text, tags, items int) []byte {
		m := benchMsg{Room: "lobby", Email: "ada@example.com", Text: strings.Repeat("lorem ipsum ", text)}
		for i := range tags {
			m.Tags = append(m.Tags, fmt.Sprintf("tag%d", i))
		}
		for i := range items {
			m.Items = append(m.Items, item{Email: fmt.Sprintf("user%d@example.com", i)})
		}
		b, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return b
	}
	return []struct {
		name string
		data []byte
	}{
		{"60B", []byte(`{"room":"lobby","email":"ada@example.com"}`)},
		{"1KiB", build(40, 8, 12)},
		{"16KiB", build(700, 32, 300)},
	}
}

// plainValidator is what an application would write without this
// package: validator with JSON names.
func plainValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	return v
}

// strictStd is the closest encoding/json gets to the strict decoder:
// unknown fields and trailing data rejected. It still lets duplicate
// keys, case-insensitive names and unbounded depth through, so it is a
// lower bound of what a strict decoder built on encoding/json would cost.
func strictStd(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the value")
	}
	return nil
}

// rawMsg is benchMsg without rules, to time the decoders alone.
type rawMsg struct {
	Room  string   `json:"room"`
	Email string   `json:"email"`
	Text  string   `json:"text"`
	Tags  []string `json:"tags"`
	Items []struct {
		Email string `json:"email"`
	} `json:"items"`
}

// BenchmarkDecode compares decoding alone: encoding/json as it is, as
// strict as it can be made, and this package's strict decoder (whose
// validation step has no rules to run here).
func BenchmarkDecode(b *testing.B) {
	v := validate.New()
	for _, m := range benchMessages() {
		b.Run(m.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.data)))
			for b.Loop() {
				var msg rawMsg
				if err := json.Unmarshal(m.data, &msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/encoding-json-strict", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.data)))
			for b.Loop() {
				var msg rawMsg
				if err := strictStd(m.data, &msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/validate", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.data)))
			for b.Loop() {
				var msg rawMsg
				if err := v.Unmarshal(m.data, &msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeValidate compares decoding and validating, the whole
// per-message cost of a typed handler.
func BenchmarkDecodeValidate(b *testing.B) {
	v := validate.New()
	pv := plainValidator()
	for _, m := range benchMessages() {
		b.Run(m.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.data)))
			for b.Loop() {
				var msg benchMsg
				if err := json.Unmarshal(m.data, &msg); err != nil {
					b.Fatal(err)
				}
				if err := pv.Struct(&msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/encoding-json-strict", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.data)))
			for b.Loop() {
				var msg benchMsg
				if err := strictStd(m.data, &msg); err != nil {
					b.Fatal(err)
				}
				if err := pv.Struct(&msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/validate", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.data)))
			for b.Loop() {
				var msg benchMsg
				if err := v.Unmarshal(m.data, &msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
