package ratelog

import (
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := &Limiter{Every: time.Second}
	t0 := time.Unix(1_800_000_000, 0)
	if ok, n := l.Allow(t0); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := 1; i <= 5; i++ {
		if ok, _ := l.Allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatalf("occurrence %d inside the period was allowed", i)
		}
	}
	if ok, n := l.Allow(t0.Add(time.Second)); !ok || n != 5 {
		t.Fatalf("after the period: %v %d, want true 5", ok, n)
	}
	l.Reset()
	if ok, n := l.Allow(t0.Add(time.Second + time.Millisecond)); !ok || n != 0 {
		t.Fatalf("after Reset: %v %d", ok, n)
	}
}

func TestLimiterCountsEveryOccurrenceUnderConcurrency(t *testing.T) {
	l := &Limiter{Every: time.Hour}
	now := time.Unix(1_800_000_000, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if ok, _ := l.Allow(now); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ok, n := l.Allow(now.Add(time.Hour)); allowed != 1 || !ok || n != 7999 {
		t.Fatalf("allowed %d, then %v with %d suppressed; want 1, true, 7999", allowed, ok, n)
	}
}
