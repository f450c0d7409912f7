// Timing, repeating and running calls concurrently.

package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// timeCalls runs do n times back to back, timing each, and checks every answer with check (not
// timed). Every answer must hold the same number of items.
func timeCalls(ctx context.Context, n int, do func(context.Context) error, check func() (int, error)) (Latency, error) {
	samples := make([]time.Duration, 0, n)
	items := -1
	for i := range n {
		started := time.Now()
		err := do(ctx)
		elapsed := time.Since(started)
		if err != nil {
			return Latency{}, fmt.Errorf("call %d of %d: %w", i+1, n, err)
		}
		got, err := check()
		if err != nil {
			return Latency{}, fmt.Errorf("call %d of %d: %w", i+1, n, err)
		}
		if items >= 0 && got != items {
			return Latency{}, fmt.Errorf("call %d of %d answered %d items, earlier calls %d", i+1, n, got, items)
		}
		items = got
		samples = append(samples, elapsed)
	}
	return summarize(samples, items), nil
}

// timeInterleaved runs each call n times in turns (first, second, …, first, second, …), so
// that background load on the machine affects each alike, and checks every answer.
func timeInterleaved(ctx context.Context, n int, calls ...call) ([]Latency, error) {
	samples := make([][]time.Duration, len(calls))
	items := make([]int, len(calls))
	for i := range items {
		items[i] = -1
	}
	for round := range n {
		for k, c := range calls {
			started := time.Now()
			err := c.do(ctx)
			elapsed := time.Since(started)
			if err != nil {
				return nil, fmt.Errorf("call %d of %d: %w", round+1, n, err)
			}
			got, err := c.check()
			if err != nil {
				return nil, fmt.Errorf("call %d of %d: %w", round+1, n, err)
			}
			if items[k] >= 0 && got != items[k] {
				return nil, fmt.Errorf("call %d of %d answered %d items, earlier calls %d", round+1, n, got, items[k])
			}
			items[k] = got
			samples[k] = append(samples[k], elapsed)
		}
	}
	out := make([]Latency, len(calls))
	for k := range calls {
		out[k] = summarize(samples[k], items[k])
	}
	return out, nil
}

// concurrently starts n callers of fn at the same moment and waits for all; the first error wins.
func concurrently(ctx context.Context, n int, fn func(context.Context) error) error {
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			errs <- fn(ctx)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// retryUntil calls fn until it succeeds or timeout passes, and returns its last error.
func retryUntil(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
