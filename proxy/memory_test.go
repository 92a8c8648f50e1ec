package proxy_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// BenchmarkIdleSessionMemory reports the heap and goroutine stack the
// proxy holds per idle client connection (the target is 64 KiB). The
// clients live in this process too, so their share is measured on direct
// connections first and subtracted.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const conns = 200
	pg := pgtest.Shared(b)
	p := proxytest.Start(b, pg, "")
	ctx := context.Background()
	inUse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	open := func(dsn string) (uint64, func()) {
		before := inUse()
		cs := make([]*pgx.Conn, 0, conns)
		for i := 0; i < conns; i++ {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			cs = append(cs, c)
		}
		used := inUse() - before
		return used, func() {
			for _, c := range cs {
				c.Close(ctx)
			}
		}
	}
	for i := 0; i < b.N; i++ {
		direct, closeDirect := open(pg.DSN(""))
		closeDirect()
		proxied, closeProxied := open(p.DSN(pg.User, pg.Password, ""))
		closeProxied()
		b.ReportMetric(float64(int64(proxied)-int64(direct))/conns, "B/idle-conn")
	}
}
