package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

func wireMsg(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	return append(b, body...)
}

// A pgbench -M prepared round trip after the first: Bind, Execute, Sync
// one way; BindComplete, DataRow, CommandComplete, ReadyForQuery back.
var (
	preparedClient = bytes.Join([][]byte{
		wireMsg('B', "\x00P0_1\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x0512345\x00\x01\x00\x00"),
		wireMsg('E', "\x00\x00\x00\x00\x00"),
		wireMsg('S', ""),
	}, nil)
	preparedServer = bytes.Join([][]byte{
		wireMsg('2', ""),
		wireMsg('D', "\x00\x01\x00\x00\x00\x04-123"),
		wireMsg('C', "SELECT 1\x00"),
		wireMsg('Z', "I"),
	}, nil)
	simpleClient = wireMsg('Q', "SELECT abalance FROM pgbench_accounts WHERE aid = 12345\x00")
	simpleServer = bytes.Join([][]byte{
		wireMsg('T', "\x00\x01abalance\x00\x00\x00\x40\x00\x00\x03\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"),
		wireMsg('D', "\x00\x01\x00\x00\x00\x04-123"),
		wireMsg('C', "SELECT 1\x00"),
		wireMsg('Z', "I"),
	}, nil)
)

// benchmarkRoundTrips forwards b.N round trips through both directions.
// A round trip's messages arrive in one read each way, as over a socket,
// so each direction flushes once per round trip. allocs/op is the number
// that matters: the forwarding path must not allocate.
func benchmarkRoundTrips(b *testing.B, client, server []byte, privileged bool) {
	s := relayHarness(b, []string{"contacts"}, privileged, 1<<20)
	s.uw = bufio.NewWriterSize(io.Discard, upstreamWrite)
	s.cw = bufio.NewWriterSize(io.Discard, clientWriteBuf)
	cin, sin := &cycleReader{b: client, n: -1}, &cycleReader{b: server, n: -1}
	s.cr = bufio.NewReaderSize(cin, clientReadBuf)
	s.ur = bufio.NewReaderSize(sin, upstreamReadBuf)
	cmsgs, _ := frames(client)
	smsgs, _ := frames(server)
	roundTrip := func() {
		for range cmsgs {
			if _, err := s.forwardClientMessage(); err != nil {
				b.Fatal(err)
			}
		}
		for range smsgs {
			if _, err := s.forwardServerMessage(); err != nil {
				b.Fatal(err)
			}
		}
	}
	roundTrip() // warm up maps, buffers and the rewrite cache
	b.SetBytes(int64(len(client) + len(server)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip()
	}
	if s.exp.len() != 0 {
		b.Fatalf("%d expectations left over: the benchmark's streams do not pair up", s.exp.len())
	}
}

func BenchmarkForwardPrepared(b *testing.B) {
	benchmarkRoundTrips(b, preparedClient, preparedServer, false)
}

func BenchmarkForwardPreparedPrivileged(b *testing.B) {
	benchmarkRoundTrips(b, preparedClient, preparedServer, true)
}

// The simple protocol passes the text through the rewriter's prefilter:
// one string conversion per statement.
func BenchmarkForwardSimpleQuery(b *testing.B) {
	benchmarkRoundTrips(b, simpleClient, simpleServer, false)
}
