package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// memoryResult is the proxy's resident memory before and after opening
// conns idle client connections through it.
type memoryResult struct {
	conns               int
	beforeKiB, afterKiB int64
}

func (m memoryResult) perConnKiB() float64 {
	return float64(m.afterKiB-m.beforeKiB) / float64(m.conns)
}

// measureIdleMemory opens n connections through the proxy as the benchmark
// role, runs one query on each (so every session is past startup and has
// used its buffers), lets them sit idle and reads the proxy's RSS. One
// connection is opened and closed first so that one-time costs (the first
// rewrite, runtime start-up) are not charged to the n connections.
func measureIdleMemory(ctx context.Context, t *tombstone, n int) (memoryResult, error) {
	dsn := pgcluster.URL(t.addr, benchRole, benchPassword, benchDB)
	warm, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return memoryResult{}, fmt.Errorf("connect through tombstone: %w", err)
	}
	if _, err := warm.Exec(ctx, "SELECT abalance FROM pgbench_accounts WHERE aid = 1"); err != nil {
		warm.Close(ctx)
		return memoryResult{}, fmt.Errorf("query through tombstone: %w", err)
	}
	warm.Close(ctx)
	time.Sleep(500 * time.Millisecond)
	res := memoryResult{conns: n}
	if res.beforeKiB, err = t.rssKiB(); err != nil {
		return res, err
	}

	conns := make([]*pgx.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := pgx.Connect(ctx, dsn)
				if err == nil {
					_, err = c.Exec(ctx, "SELECT abalance FROM pgbench_accounts WHERE aid = 1")
					conns[i] = c
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("idle connection %d through tombstone: %w", i+1, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	time.Sleep(time.Second) // let the sessions go idle
	snap, err := t.scrape(ctx)
	if err != nil {
		return res, err
	}
	if open := snap.sum("tombstone_client_connections"); int(open) < n {
		return res, fmt.Errorf("tombstone reports %v client connections open, want at least %d", open, n)
	}
	res.afterKiB, err = t.rssKiB()
	return res, err
}
