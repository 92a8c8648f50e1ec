package rewrite

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

func TestParserStackIsLinked(t *testing.T) {
	if !parserStackLinked() {
		t.Fatal("pg_query's entry points are not linked: every parse would be refused")
	}
	if got := parserStackBytesNow(); got != parserStackBytes {
		t.Fatalf("parser stacks are %d bytes, want parserStackBytes (%d)", got, parserStackBytes)
	}
}

// The calls on the parser stack answer what pg_query_go's own calls
// answer: the same trees, texts and errors.
func TestParserStackMatchesPgQuery(t *testing.T) {
	texts := append(templateCorpus(t), "SELEC 1", "SELECT 'unterminated", "SELECT 1"+strings.Repeat("+1", 6000))
	for _, sql := range texts {
		got, gotErr := pgParse(sql)
		want, wantErr := pg.Parse(sql)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("%.80q: parse errors differ: %v, want %v", sql, gotErr, wantErr)
		}
		if gotErr != nil {
			continue
		}
		a, errA := pgDeparse(got)
		b, errB := pg.Deparse(want)
		if a != b || (errA == nil) != (errB == nil) {
			t.Fatalf("%.80q: deparse %q (%v), want %q (%v)", sql, a, errA, b, errB)
		}
	}
	for _, body := range []string{
		"BEGIN DELETE FROM contacts WHERE id = 1; END",
		"BEGIN IF x THEN RETURN 1; END",
	} {
		sql := "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$" + body + "$$"
		got, gotErr := pgParsePlPgSQLToJSON(sql)
		want, wantErr := pg.ParsePlPgSqlToJSON(sql)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: %q (%v), want %q (%v)", body, got, gotErr, want, wantErr)
		}
	}
}

// stackChild runs, in a child process, pgParse of "SELECT 1+1+...+1"
// with n operators (or pgDeparse of such a tree built directly, deep
// beyond what the protobuf decoder would let a parse produce) on parser
// stacks of stackBytes. It reports whether the child survived: a stack
// overflow in C kills the process, which is exactly what must not happen
// to the proxy.
func stackChild(t *testing.T, what string, n, stackBytes int) (survived bool, out string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestParserStackChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("TOMBSTONE_STACK_CHILD=%s,%d,%d", what, n, stackBytes))
	b, err := cmd.CombinedOutput()
	if err == nil {
		return true, string(b)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && (ws.Signaled() || ws.ExitStatus() == 2 && strings.Contains(string(b), "SIGSEGV")) {
			return false, string(b)
		}
	}
	t.Fatalf("child %s n=%d: %v\n%s", what, n, err, b)
	return false, ""
}

func TestParserStackChild(t *testing.T) {
	spec := os.Getenv("TOMBSTONE_STACK_CHILD")
	if spec == "" {
		t.Skip("run by TestParserStackBoundsRecursion in a child process")
	}
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[1])
	size, _ := strconv.Atoi(parts[2])
	setParserStackBytes(size)
	switch parts[0] {
	case "parse":
		_, err := pgParse("SELECT 1" + strings.Repeat("+1", n))
		t.Logf("parse: %v", err)
	case "deparse":
		e := pg.MakeAConstIntNode(1, 0)
		for range n {
			e = pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("+")}, e, pg.MakeAConstIntNode(1, 0), 0)
		}
		tree := &pg.ParseResult{Stmts: []*pg.RawStmt{{Stmt: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: &pg.SelectStmt{
			TargetList: []*pg.Node{pg.MakeResTargetNodeWithVal(e, 0)}}}}}}}
		out, err := pgDeparse(tree)
		t.Logf("deparse: %d bytes, %v", len(out), err)
	}
}

// The parser stack, not the thread's, bounds pg_query's recursion, and
// it does so as measured (limits.go): parse needs 352 bytes of stack per
// chained operator (176 per byte of text), deparse 1,886 per operator
// (943 per protobuf message). A quarter below the measured need a call
// survives, a quarter above it the stack overflows; so the 4 GiB stack
// holds any text of MaxStatementBytes, and the bounds use a sliver of it.
func TestParserStackBoundsRecursion(t *testing.T) {
	if os.Getenv("TOMBSTONE_STACK_CHILD") != "" {
		t.Skip("child")
	}
	const stack = 32 << 20
	for _, c := range []struct {
		what     string
		perLevel int
	}{
		{"parse", parseStackPerLevel},
		{"deparse", deparseStackPerLevel},
	} {
		fits := stack / c.perLevel
		if ok, out := stackChild(t, c.what, fits*3/4, stack); !ok {
			t.Errorf("%s of %d levels overflowed a %d MiB parser stack:\n%.2000s", c.what, fits*3/4, stack>>20, out)
		}
		if ok, _ := stackChild(t, c.what, fits*5/4, stack); ok {
			t.Errorf("%s of %d levels fit a %d MiB parser stack: the measured %d bytes per level are stale", c.what, fits*5/4, stack>>20, c.perLevel)
		}
	}
	// The default stack: what crashed the proxy on a thread's 8 MiB.
	for _, c := range []struct {
		what string
		n    int
	}{{"parse", 30000}, {"deparse", 20000}} {
		if ok, out := stackChild(t, c.what, c.n, parserStackBytes); !ok {
			t.Errorf("%s of %d levels overflowed the default parser stack:\n%.2000s", c.what, c.n, out)
		}
	}
	// The worst text of MaxStatementBytes fits the default stack.
	if need := MaxStatementBytes / 2 * parseStackPerLevel; need > parserStackBytes*3/4 {
		t.Errorf("a chain of MaxStatementBytes needs %d bytes of parse stack: more than 3/4 of the %d reserved", need, parserStackBytes)
	}
}

// BenchmarkParserStackSwitch is what the parser stack adds to a call:
// taking a stack from the pool, switching to it and back ("switch"),
// against a cgo call of a C function that does nothing much ("cgo").
func BenchmarkParserStackSwitch(b *testing.B) {
	b.Run("switch", func(b *testing.B) {
		for b.Loop() {
			parserStackSwitch()
		}
	})
	b.Run("cgo", func(b *testing.B) {
		for b.Loop() {
			parserStackLinked()
		}
	})
}

func BenchmarkParse(b *testing.B) {
	sql := goldenSQL(b, "select", "right join then left join")
	b.Run("parser-stack", func(b *testing.B) {
		for b.Loop() {
			if _, err := pgParse(sql); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pg_query_go", func(b *testing.B) {
		for b.Loop() {
			if _, err := pg.Parse(sql); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDeparse(b *testing.B) {
	tree, err := pg.Parse(goldenSQL(b, "select", "right join then left join"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parser-stack", func(b *testing.B) {
		for b.Loop() {
			if _, err := pgDeparse(tree); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pg_query_go", func(b *testing.B) {
		for b.Loop() {
			if _, err := pg.Deparse(tree); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Signals reach threads while they run on a parser stack: the Go
// runtime's profiling signal (SIGPROF), preemption (SIGURG) and the GC's
// stop-the-world must not trip over a stack pointer outside any stack it
// knows. Many goroutines parse and deparse under a CPU profile and forced
// GCs; the test passes if the process survives and every answer is right.
func TestParserStackUnderSignals(t *testing.T) {
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		t.Skip("a CPU profile is already running")
	}
	defer pprof.StopCPUProfile()
	sql := "SELECT * FROM contacts c JOIN orders o ON o.contact_id = c.id WHERE c.id IN (SELECT 1" + strings.Repeat("+1", 200) + ")"
	want, err := pg.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	wantSQL, _ := pg.Deparse(want)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if g == 0 && i%10 == 0 {
					runtime.GC()
				}
				tree, err := pgParse(sql)
				if err != nil {
					errs <- err.Error()
					return
				}
				out, err := pgDeparse(tree)
				if err != nil || out != wantSQL {
					errs <- fmt.Sprintf("deparse: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
