package wsguard

import (
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestConnLimitForgetsClients(t *testing.T) {
	t.Parallel()
	l := NewConnLimit(1000, 3)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", i%10)
			release, err := l.Acquire(r)
			if err == nil {
				defer release()
			}
		})
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open != 0 || len(l.byClient) != 0 {
		t.Errorf("open = %d, %d clients tracked after every release; want none", l.open, len(l.byClient))
	}
}
