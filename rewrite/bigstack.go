package rewrite

/*
#include <stdlib.h>
#include "bigstack.h"
*/
import "C"

import (
	"errors"
	"unsafe"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/proto"
)

// Parser stacks. pg_query's C code recurses once or more per level of the
// tree it builds, prints or reads, and it never checks its stack (its
// check_stack_depth() has no stack base set, and the protobuf output and
// input functions do not call it). On the calling thread's stack (8 MiB
// for a Go thread with cgo) a chain of about 23,800 + overflows the parse
// and one of 4,450 the deparse (measured: limits.go), and a SIGSEGV in
// cgo kills every session. So every call with client input runs on a
// stack of its own (bigstack.c): the calling thread switches its stack
// pointer to a reserved region and back, with no system call, which costs
// well under a microsecond (BenchmarkParserStackSwitch).
//
// Each stack reserves parserStackBytes of address space and commits only
// the pages a call touches. The worst construct measured, a chain of
// binary operators, needs 176 bytes of parse stack per byte of text, so
// any text up to MaxStatementBytes (4 MiB) needs at most 0.7 GiB: no
// text the bounds let through can overflow a parse stack, whatever its
// nesting, even if measure() misjudged it. Deparse reads trees that
// pg_query's own parse produced and the protobuf decoder accepted (at most
// 10,000 messages deep) plus the few levels the rules add; at the measured
// 943 bytes per message that is under 10 MiB. Where the address space
// cannot be reserved (a ulimit -v, strict overcommit), the stack is halved
// down to 64 MiB, which still holds 30 times what the bounds let through.
//
// At most 64 stacks exist; a 65th concurrent call waits for one. After an
// input longer than 64 KiB the stack's pages are given back but for the
// top MiB.
const parserStackBytes = 4 << 30

// errNoParserStack: no stack could be reserved, so nothing was parsed.
var errNoParserStack = errors.New("no parser stack could be reserved")

// pgParse is pg.Parse run on a parser stack.
func pgParse(sql string) (*pg.ParseResult, error) {
	cs := C.CString(sql)
	defer C.free(unsafe.Pointer(cs))
	var r C.PgQueryProtobufParseResult
	if C.tomb_parse(cs, C.size_t(len(sql)), &r) != 0 {
		return nil, errNoParserStack
	}
	defer C.tomb_free_parse_result(r)
	if r.error != nil {
		return nil, pgError(r.error)
	}
	buf := C.GoBytes(unsafe.Pointer(r.parse_tree.data), C.int(r.parse_tree.len))
	tree := &pg.ParseResult{}
	if err := proto.Unmarshal(buf, tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// pgDeparse is pg.Deparse run on a parser stack.
func pgDeparse(tree *pg.ParseResult) (string, error) {
	buf, err := proto.Marshal(tree)
	if err != nil {
		return "", err
	}
	data := C.CBytes(buf)
	defer C.free(data)
	var r C.PgQueryDeparseResult
	if C.tomb_deparse(data, C.size_t(len(buf)), &r) != 0 {
		return "", errNoParserStack
	}
	defer C.tomb_free_deparse_result(r)
	if r.error != nil {
		return "", pgError(r.error)
	}
	return C.GoString(r.query), nil
}

// pgParsePlPgSQLToJSON is pg.ParsePlPgSqlToJSON run on a parser stack:
// its JSON output recurses per nested block and statement.
func pgParsePlPgSQLToJSON(body string) (string, error) {
	cs := C.CString(body)
	defer C.free(unsafe.Pointer(cs))
	var r C.PgQueryPlpgsqlParseResult
	if C.tomb_parse_plpgsql(cs, C.size_t(len(body)), &r) != 0 {
		return "", errNoParserStack
	}
	defer C.tomb_free_plpgsql_result(r)
	if r.error != nil {
		return "", pgError(r.error)
	}
	return C.GoString(r.plpgsql_funcs), nil
}

// pgError is pg_query_go's error for a C error, as its own calls return.
func pgError(e *C.PgQueryError) error {
	err := &parser.Error{Message: C.GoString(e.message), Lineno: int(e.lineno), Cursorpos: int(e.cursorpos)}
	if e.funcname != nil {
		err.Funcname = C.GoString(e.funcname)
	}
	if e.filename != nil {
		err.Filename = C.GoString(e.filename)
	}
	if e.context != nil {
		err.Context = C.GoString(e.context)
	}
	return err
}

// parserStackLinked reports whether pg_query's entry points were linked
// (they are weak symbols in bigstack.c); tests check it.
func parserStackLinked() bool { return C.tomb_linked() != 0 }

// setParserStackBytes sets the size of stacks made from now on, and
// parserStackBytesNow reads it (tests).
func setParserStackBytes(n int) { C.tomb_set_stack_size(C.size_t(n)) }

func parserStackBytesNow() int { return int(C.tomb_stack_size()) }

func parserStackSwitch() { C.tomb_noop() }
