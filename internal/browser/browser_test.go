package browser

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFind(t *testing.T) {
	tests := []struct {
		name, env, path, want string
	}{
		{"override wins", "/opt/chrome/chrome", "", "/opt/chrome/chrome"},
		{"nothing on PATH", "", t.TempDir(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvPath, tt.env)
			t.Setenv("PATH", tt.path)
			if got := Find(); got != tt.want {
				t.Errorf("Find() = %q, want %q", got, tt.want)
			}
		})
	}
}
