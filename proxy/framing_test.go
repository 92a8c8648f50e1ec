package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// relayHarness drives a session's two forwarding loops over in-memory
// streams, without sockets: the framing logic under fuzzing and
// benchmarks. Postgres itself is exercised by the end-to-end tests.
func relayHarness(tb testing.TB, tables []string, privileged bool, maxSize int) *session {
	tb.Helper()
	spec := policy.Spec{Mode: policy.ModeEnforce}
	for _, name := range tables {
		spec.Tables = append(spec.Tables, policy.TableSpec{Name: name, DeletedAt: "deleted_at"})
	}
	p, err := policy.New(spec)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := NewServer(Options{
		// Nothing listens here: a cancel for a departed client fails fast.
		Upstream:       "/nonexistent/.s.PGSQL.1",
		MaxMessageSize: maxSize,
		Logger:         slog.New(slog.DiscardHandler),
		Metrics:        metrics.New(prometheus.NewRegistry(), "test", "test"),
	}, rewrite.New(p, 1<<20))
	if err != nil {
		tb.Fatal(err)
	}
	// The streams are set by the caller; the connection is there for the
	// deadlines the session sets on it (an oversized message).
	client, peer := net.Pipe()
	tb.Cleanup(func() { client.Close(); peer.Close() })
	return &session{srv: srv, log: srv.log, client: client, privileged: privileged, marker: "tombstone-refusal-fuzz-", db: srv.database("fuzz")}
}

// frames splits b into complete messages; rest is what follows the last
// complete one (a partial or invalid message).
func frames(b []byte) (msgs [][]byte, rest []byte) {
	for len(b) >= 5 {
		l := int(int32(binary.BigEndian.Uint32(b[1:5])))
		if l < 4 || len(b) < 1+l {
			break
		}
		msgs = append(msgs, b[:1+l])
		b = b[1+l:]
	}
	return msgs, b
}

// expectedClientFrames is what clientToServer must forward of an input:
// complete messages up to the first invalid or oversized one, through a
// Terminate, and then at most a prefix of a final incomplete message
// (bodies are streamed, so a client that vanishes mid-message leaves a
// part of it forwarded).
func expectedClientFrames(in []byte, maxSize int) (msgs [][]byte, partial []byte) {
	msgs, rest := frames(in)
	for i, m := range msgs {
		if len(m)-5 > maxSize {
			return msgs[:i], nil
		}
		if m[0] == 'X' {
			return msgs[:i+1], nil
		}
	}
	if len(rest) >= 5 && int(int32(binary.BigEndian.Uint32(rest[1:5])))-4 > maxSize {
		return msgs, nil
	}
	return msgs, rest
}

func FuzzRelayFraming(f *testing.F) {
	msg := func(typ byte, body string) []byte {
		b := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
		return append(b, body...)
	}
	cat := func(ms ...[]byte) []byte { return bytes.Join(ms, nil) }
	parse := func(name, q string) []byte { return msg('P', name+"\x00"+q+"\x00\x00\x00") }
	bind := func(portal, stmt string) []byte { return msg('B', portal+"\x00"+stmt+"\x00\x00\x00\x00\x00\x00\x00") }
	exec := func(portal string) []byte { return msg('E', portal+"\x00\x00\x00\x00\x00") }
	sync, cc := msg('S', ""), func(tag string) []byte { return msg('C', tag+"\x00") }
	rfq := msg('Z', "I")
	// Seeds: a prepared DELETE on a soft-delete table and its answers, a
	// multi-statement Query, a refusal, COPY, and broken framing. The
	// corpus under testdata/fuzz/FuzzRelayFraming holds more.
	f.Add(cat(parse("d", "DELETE FROM contacts WHERE id = $1"), bind("", "d"), exec(""), sync),
		cat(msg('1', ""), msg('2', ""), cc("UPDATE 1"), rfq))
	f.Add(cat(msg('Q', "DELETE FROM contacts; SELECT 1; TRUNCATE other\x00")),
		cat(cc("UPDATE 3"), msg('T', "\x00\x00"), cc("SELECT 1"), cc("TRUNCATE TABLE"), rfq))
	f.Add(cat(msg('Q', "TRUNCATE contacts\x00"), msg('X', "")),
		cat(msg('E', "SERROR\x00C42703\x00Mcolumn \"tombstone-refusal-fuzz-1\" does not exist\x00\x00"), rfq))
	f.Add(cat(msg('Q', "COPY contacts FROM STDIN\x00"), msg('d', "1\t2\n"), msg('c', ""), sync),
		cat(msg('G', "\x00\x00\x00"), cc("COPY 1"), rfq, rfq))
	f.Add([]byte{'Q', 0, 0, 0, 2}, []byte{'C', 0xff, 0xff, 0xff, 0xff})
	f.Add(cat(parse("", "SELECT 1"), bind("p", ""), exec("p"), msg('H', ""), msg('C', "Pp\x00"), sync),
		cat(msg('s', ""), msg('E', "SERROR\x00\x00"), rfq))
	// FunctionCall of query_to_xml (refused) and of lo_open, Close, and
	// the answers the proxy decodes: ParseComplete, CloseComplete,
	// ParameterStatus.
	f.Add(cat(msg('F', "\x00\x00\x0b\x6c\x00\x00\x00\x00\x00\x00"), msg('F', "\x00\x00\x03\xb8\x00\x00\x00\x00\x00\x00"),
		parse("d", "DELETE FROM contacts WHERE id = $1"), msg('C', "Sd\x00"), sync),
		cat(msg('E', "SERROR\x00C42703\x00Mcolumn \"tombstone-refusal-fuzz-1\" does not exist\x00\x00"), rfq,
			msg('V', "\x00\x00\x00\x01\x30"), rfq, msg('1', ""), msg('3', ""),
			msg('S', "standard_conforming_strings\x00off\x00"), msg('S', "client_encoding\x00SJIS\x00"), rfq))
	const maxSize = 1 << 16
	f.Fuzz(func(t *testing.T, client, server []byte) {
		for _, privileged := range []bool{false, true} {
			s := relayHarness(t, []string{"contacts"}, privileged, maxSize)
			var up, down bytes.Buffer
			s.cr = bufio.NewReaderSize(bytes.NewReader(client), clientReadBuf)
			s.uw = bufio.NewWriterSize(&up, upstreamWrite)
			s.clientToServer()
			s.uw.Flush()
			s.ur = bufio.NewReaderSize(bytes.NewReader(server), upstreamReadBuf)
			s.cw = bufio.NewWriterSize(&down, clientWriteBuf)
			s.serverToClient()
			s.cw.Flush()
			want, partial := expectedClientFrames(client, maxSize)
			checkRelayed(t, "client->server", want, partial, up.Bytes(), "QP")
			want, partial = frames(server)
			checkRelayed(t, "server->client", want, partial, down.Bytes(), "CE")
		}
	})
}

// checkRelayed asserts that out is exactly the expected messages, in
// order, well framed, and byte-identical except for the types the proxy
// may rewrite (statements one way, tags and refusals the other), followed
// by nothing but a prefix of partial.
func checkRelayed(t *testing.T, dir string, want [][]byte, partial, out []byte, mayChange string) {
	t.Helper()
	got, rest := frames(out)
	if !bytes.HasPrefix(partial, rest) {
		t.Fatalf("%s: %d bytes after the last whole message are not the start of the unfinished input message", dir, len(rest))
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages out, want %d", dir, len(got), len(want))
	}
	for i := range got {
		// A refused FunctionCall goes upstream as a Query carrying the
		// refusal's sentinel.
		refusedCall := want[i][0] == 'F' && got[i][0] == 'Q'
		if got[i][0] != want[i][0] && !refusedCall {
			t.Fatalf("%s: message %d is %q, want %q", dir, i, got[i][0], want[i][0])
		}
		if bytes.IndexByte([]byte(mayChange), got[i][0]) < 0 && !refusedCall && !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: message %d (%q) changed:\n got %q\nwant %q", dir, i, got[i][0], got[i], want[i])
		}
	}
}

// cycleReader yields the same bytes n times (forever when n < 0), then EOF.
type cycleReader struct {
	b   []byte
	off int
	n   int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.b[r.off:])
	r.off += k
	if r.off == len(r.b) {
		r.off = 0
		r.n--
	}
	return k, nil
}
