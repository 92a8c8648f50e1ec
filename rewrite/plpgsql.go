package rewrite

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Procedural code: DO blocks and CREATE FUNCTION / PROCEDURE with a string
// body. The statements in such a body run on the server, so Tombstone
// rewrites them before the body is stored:
//
//   - LANGUAGE plpgsql (and DO, whose default it is): pg_query's PL/pgSQL
//     parser lists every SQL expression of the body (PLpgSQL_expr: SQL
//     statements, PERFORM, conditions, assignments, FOR and cursor queries,
//     RETURN QUERY, RAISE and ASSERT arguments, CALL, DEFAULT values, ...).
//     Each goes through the same uncached pipeline as a statement sent by
//     a client (Rewriter.rewrite): a DELETE becomes the soft-delete UPDATE,
//     reads get their live-rows filter, and whatever the engine refuses is
//     refused. When nothing changes the body passes as it is; otherwise each
//     changed expression is replaced in the body text, where plpgsql found
//     it, and the result is parsed again to prove that the new body holds
//     exactly the expected expressions and nothing else changed.
//   - LANGUAGE sql: the body is SQL statements, rewritten the same way.
//   - Any other language (C, internal, plperl, ...): refused when the body
//     may name a soft-delete table, since Tombstone cannot read it.
//
// Refused outright: dynamic SQL (EXECUTE, OPEN ... FOR EXECUTE, RETURN QUERY
// EXECUTE, FOR ... IN EXECUTE) of anything but one string literal, whose
// text is built at run time; a literal is rewritten like an embedded
// statement. Bodies whose reading depends on standard_conforming_strings.
// (A SET clause that turns it off, or sets an unsafe client_encoding, is
// refused with every other such SET by the final check, settings.go.)
//
// How plpgsql (PostgreSQL 17's pl_gram.y, which pg_query compiles) builds an
// expression's query text from the body, and so how it is found again:
//
//   - read_sql_construct (nearly every expression) keeps the body text from
//     the first token to the end of the last one: a verbatim slice that
//     starts and ends on token boundaries.
//   - make_execsql_stmt (an SQL statement) keeps the text up to the
//     semicolon, trailing whitespace trimmed, with its INTO clause (from
//     INTO to the next token) replaced by as many spaces.
//   - PERFORM is read like a statement, with "PERFORM" replaced by "SELECT".
//   - The WHEN list of a simple CASE becomes "__Case__Variable_N__" IN (list).
//   - Cursor arguments are reassembled from their parts (named ones reordered,
//     with AS): not a slice of the body. They pass when they need no change.

// routine is a DO block or a CREATE FUNCTION / PROCEDURE being judged.
type routine struct {
	what  string       // for messages: "DO block", "CREATE FUNCTION", ...
	lang  string       // LANGUAGE, as written ("" if none)
	parts []*pg.String // the AS strings: the body, or C's file and symbol
	stmt  *pg.Node     // the statement, which is re-emitted with a new body
	do    bool
	// labels are the names plpgsql adds above the body: the function's
	// name (which qualifies its parameters) or DO's inline_code_block.
	labels []string
}

// doStmt judges and, where needed, rewrites a DO block's body.
func (e *engine) doStmt(d *pg.DoStmt) error {
	r := &routine{what: "DO block", lang: "plpgsql", do: true,
		stmt: &pg.Node{Node: &pg.Node_DoStmt{DoStmt: d}}, labels: []string{"inline_code_block"}}
	for _, a := range d.Args {
		switch de := a.GetDefElem(); de.GetDefname() {
		case "as":
			if s := de.Arg.GetString_(); s != nil {
				r.parts = append(r.parts, s)
			}
		case "language":
			r.lang = de.Arg.GetString_().GetSval()
		}
	}
	return e.routineBody(r)
}

// functionBody judges and, where needed, rewrites the string body of a
// CREATE FUNCTION or CREATE PROCEDURE (what names which).
func (e *engine) functionBody(what string, f *pg.CreateFunctionStmt) error {
	r := &routine{what: what, stmt: &pg.Node{Node: &pg.Node_CreateFunctionStmt{CreateFunctionStmt: f}}}
	for _, n := range f.Funcname {
		r.labels = append(r.labels, n.GetString_().GetSval())
	}
	for _, o := range f.Options {
		d := o.GetDefElem()
		switch d.GetDefname() {
		case "as":
			if l := d.Arg.GetList(); l != nil {
				for _, it := range l.Items {
					if s := it.GetString_(); s != nil {
						r.parts = append(r.parts, s)
					}
				}
			} else if s := d.Arg.GetString_(); s != nil {
				r.parts = append(r.parts, s)
			}
		case "language":
			r.lang = d.Arg.GetString_().GetSval()
		}
	}
	return e.routineBody(r)
}

func (e *engine) routineBody(r *routine) error {
	for _, p := range r.parts {
		if !reemittable(p.Sval, r.do) {
			return refuseDeparse(fmt.Errorf("the body of the %s would not survive pg_query's printer (a dollar quote at its end or inside it)", r.what))
		}
	}
	readable := len(r.parts) == 1 && (r.lang == "plpgsql" || r.lang == "sql" && !r.do)
	if !readable {
		// Any other language (plperl, plv8, pltcl, ... some of them
		// trusted, so an ordinary role may use them) runs SQL it builds
		// at run time through SPI: no text in its body need name a
		// table. C and internal functions need a superuser anyway.
		return unseen(r.what+" in LANGUAGE "+langName(r.lang)+": Tombstone cannot see into code in that language",
			"Such code can run any SQL; a DELETE inside it would remove rows for good and its reads would see deleted rows.",
			"Write it in LANGUAGE plpgsql or sql, which Tombstone rewrites, or run it as a privileged role.")
	}
	if !e.filter.mayMatch(r.parts[0].Sval) {
		return nil
	}
	// A routine inside a body is rewritten with its own body, and so
	// on down: bound the depth, so that one text cannot ask for work
	// growing with the square of its length.
	if n := stringNesting(r.parts[0].Sval, maxBodyNesting+1); n > maxBodyNesting {
		return refuseTooDeep(fmt.Sprintf("nests string literals and routine bodies %d levels deep in the body of a %s (limit %d)", n, r.what, maxBodyNesting))
	}
	if r.lang == "sql" {
		return e.sqlBody(r)
	}
	return e.plpgsqlBody(r)
}

// langName is a routine's language for a message.
func langName(lang string) string {
	if lang == "" {
		return "(none given)"
	}
	return lang
}

// reemittable reports whether pg_query's printer writes body back as a
// literal that reads as body: it dollar-quotes with $$ (DO: $outer$ when
// the body holds $$) and otherwise writes a string literal, which breaks
// when the body ends with part of the delimiter or holds it.
func reemittable(body string, do bool) bool {
	if !strings.Contains(body, "$$") {
		return !strings.HasSuffix(body, "$")
	}
	return !do || !strings.Contains(body, "$outer$") && !strings.HasSuffix(body, "$outer")
}

// sqlBody rewrites a LANGUAGE sql string body as the SQL statements it is.
func (e *engine) sqlBody(r *routine) error {
	body := r.parts[0].Sval
	toks, err := pg.Scan(body)
	if err != nil {
		return refuseUnparseable("the body of the " + r.what + ": " + err.Error())
	}
	if ref := scanInvariant(body, toks.Tokens, r.what); ref != nil {
		return ref
	}
	res, ref := e.embeddedRewrite(body)
	if ref != nil {
		return ref
	}
	if !res.Changed {
		return nil
	}
	if _, err := e.setBody(r, res.SQL); err != nil {
		return err
	}
	e.applyAll(res)
	return nil
}

// embeddedRewrite runs one piece of SQL from a body through the uncached
// pipeline. A refusal is the routine's: the statements before it in the
// body do not run on their own.
func (e *engine) embeddedRewrite(sql string) (*Result, *Refusal) {
	// Deparsed, not spliced: a body is checked by printing it back
	// (setBody), and its golden forms are pg_query's.
	sub := &Rewriter{policy: e.policy, filter: e.filter, deparseOnly: true}
	res, ref := sub.rewrite(sql)
	if ref != nil {
		r := *ref
		r.Before = nil
		return nil, &r
	}
	for _, st := range res.Statements {
		if st.Prepare != "" || st.Deallocate != "" || st.DeallocateAll {
			// The proxy follows prepared statements by the names the
			// client's own statements give them, to report DELETE for a
			// soft delete; one prepared or dropped inside a routine
			// would later be reported with the wrong tag.
			return nil, unseen("PREPARE, DEALLOCATE or DISCARD inside a routine: Tombstone follows prepared statements only through the client's own statements",
				"A DELETE prepared inside it would later complete as UPDATE, or an UPDATE as DELETE.",
				"Prepare the statement from the client, or run the routine as a privileged role.")
		}
	}
	return res, nil
}

func (e *engine) applyAll(res *Result) {
	e.changed = true
	e.noText()
	for _, a := range res.Applied {
		e.apply(a.Table, a.Kind)
	}
}

// setBody stores body as the routine's body and checks that the statement
// pg_query prints from the tree holds exactly that body. It returns the
// printed statement; on failure the old body is put back.
func (e *engine) setBody(r *routine, body string) (string, error) {
	old := r.parts[0].Sval
	r.parts[0].Sval = body
	printed, err := printOne(r.stmt)
	if err == nil {
		var tree *pg.ParseResult
		tree, err = pgParse(printed)
		if err == nil && (len(tree.Stmts) != 1 || routineBodyOf(tree.Stmts[0].Stmt) != body) {
			err = errors.New("the printed statement does not hold the rewritten body")
		}
	}
	if err != nil {
		r.parts[0].Sval = old
		return "", refuseDeparse(err)
	}
	return printed, nil
}

// treeVersion is the parse tree version pg_query's printer expects, the
// same for every tree this build of pg_query makes.
var treeVersion = sync.OnceValue(func() int32 {
	tree, err := pgParse("SELECT")
	if err != nil {
		return 0
	}
	return tree.Version
})

// printOne is pg_query's text for one statement.
func printOne(stmt *pg.Node) (string, error) {
	return pgDeparse(&pg.ParseResult{Version: treeVersion(), Stmts: []*pg.RawStmt{{Stmt: stmt}}})
}

// routineBodyOf is the single AS string of a DO or CREATE FUNCTION, or "".
func routineBodyOf(n *pg.Node) string {
	var opts []*pg.Node
	switch {
	case n.GetDoStmt() != nil:
		opts = n.GetDoStmt().Args
	case n.GetCreateFunctionStmt() != nil:
		opts = n.GetCreateFunctionStmt().Options
	}
	for _, o := range opts {
		if d := o.GetDefElem(); d.GetDefname() == "as" {
			if l := d.Arg.GetList(); l != nil && len(l.Items) == 1 {
				return l.Items[0].GetString_().GetSval()
			}
			return d.Arg.GetString_().GetSval()
		}
	}
	return ""
}

// scanInvariant refuses a body that the server would split into tokens
// differently under standard_conforming_strings = off, which a session or
// an ALTER FUNCTION ... SET can choose for the moment the body is
// compiled: a backslash before a quote inside a plain '...' literal ends
// the literal under one setting and not under the other, which could move
// text between a string and code.
func scanInvariant(body string, toks []*pg.ScanToken, what string) *Refusal {
	for _, t := range toks {
		switch t.Token {
		case pg.Token_SCONST, pg.Token_USCONST, pg.Token_BCONST, pg.Token_XCONST:
		default:
			continue
		}
		lit := body[t.Start:t.End]
		if lit[0] == 'e' || lit[0] == 'E' || lit[0] == '$' {
			continue // escape strings and dollar quotes read the same either way
		}
		if strings.Contains(lit, `\'`) {
			return RefuseLexing("the body of the " + what + " holds a string literal with a backslash before a quote, which the server reads differently when standard_conforming_strings is off")
		}
	}
	return nil
}

// expression is one PLpgSQL_expr of the parsed body.
type expression struct {
	obj     map[string]any // the PLpgSQL_expr's fields, in the parsed tree
	query   string
	mode    int    // RawParseMode: 0 statement, 2 expression, 3-5 assignment
	holder  string // the node holding it, e.g. PLpgSQL_stmt_execsql
	field   string // the holder's field, e.g. sqlstmt
	into    bool   // an SQL statement with an INTO clause
	caseVar string // a simple CASE's WHEN list: the CASE's variable
}

// maxBodyNesting bounds how deep string literals (and so the bodies of
// routines defined inside routines, and EXECUTE strings) nest in a body.
const maxBodyNesting = 8

// stringNesting is how deep string literals nest in s: a literal of s is
// one level, a literal in its value two, and so on, counted up to limit.
func stringNesting(s string, limit int) int {
	if limit <= 0 {
		return 0
	}
	toks, err := pg.Scan(s)
	if err != nil {
		return 0 // not SQL: nothing in it is rewritten as SQL
	}
	deepest := 0
	for i, t := range toks.Tokens {
		if t.Token != pg.Token_SCONST && t.Token != pg.Token_USCONST {
			continue
		}
		v, ok := literalValue(s[t.Start:t.End])
		if !ok || t.Token == pg.Token_USCONST && i+1 < len(toks.Tokens) && toks.Tokens[i+1].Token == pg.Token_UESCAPE {
			return limit // unreadable here (U& with UESCAPE): assume the worst
		}
		if !strings.ContainsAny(v, "'$") {
			deepest = max(deepest, 1) // no literal can start in it
			continue
		}
		deepest = max(deepest, 1+stringNesting(v, limit-1))
		if deepest >= limit {
			break
		}
	}
	return deepest
}

// literalValue is the value of one string literal token.
func literalValue(lit string) (string, bool) {
	if lit[0] == '$' {
		if end := strings.IndexByte(lit[1:], '$'); end >= 0 {
			tag := lit[:end+2]
			if len(lit) >= 2*len(tag) && strings.HasSuffix(lit, tag) {
				return lit[len(tag) : len(lit)-len(tag)], true
			}
		}
		return "", false
	}
	if lit[0] == '\'' && strings.Count(lit, "'")%2 == 0 && !strings.Contains(strings.ReplaceAll(lit[1:len(lit)-1], "''", ""), "'") {
		return strings.ReplaceAll(lit[1:len(lit)-1], "''", "'"), true
	}
	// E'', U&'', N'' or a literal continued on the next line: let the
	// parser read it.
	return stringLiteral(lit)
}

// maxBodyExpressions bounds the SQL expressions of one PL/pgSQL body, each
// rewritten on its own; real routines hold tens or hundreds.
const maxBodyExpressions = 10000

// Parse modes of PLpgSQL_expr (RawParseMode in parser.h).
const (
	modeStatement = 0
	modeExpr      = 2
	modeAssign1   = 3
	modeAssign3   = 5
)

// matching says how an expression's query text is found in the body.
type matching uint8

const (
	matchVerbatim matching = iota // the query is a slice of the body
	matchPerform                  // "PERFORM" + query without its "SELECT"
	matchInto                     // the slice with its INTO clause blanked
)

// edit is the rewrite of one expression, before it is located.
type edit struct {
	x        *expression
	how      matching
	pattern  string // what is looked for (matchVerbatim: the slice; matchPerform: after PERFORM; matchInto: the query)
	repl     string // the new body text for it (matchInto: without the INTO clause)
	newQuery string // the query text plpgsql will build from repl
	checkSQL string // the rewritten SQL, for the name check
}

// plpgsqlBody rewrites a PL/pgSQL body.
func (e *engine) plpgsqlBody(r *routine) error {
	body := r.parts[0].Sval
	if len(body) > MaxStatementBytes {
		return refuseTooLong(len(body))
	}
	if ref := textShape(body).tooDeep(); ref != nil {
		return ref
	}
	if strings.IndexByte(body, 0) >= 0 {
		return refuseUnparseable("the body of the " + r.what + " contains a NUL byte")
	}
	scan, err := pg.Scan(body)
	if err != nil {
		return refuseUnparseable("the PL/pgSQL body of the " + r.what + ": " + err.Error())
	}
	toks := scan.Tokens
	if ref := scanInvariant(body, toks, r.what); ref != nil {
		return ref
	}
	// What pg_query's PL/pgSQL parser reads: the routine printed with its
	// body in a dollar quote that cannot clash with it (the printer's own
	// quoting may not read back; that is checked when the body changes,
	// in setBody).
	text, ok := spellRoutine(r.stmt)
	if !ok {
		return refuseDeparse(errors.New("could not print the routine for the PL/pgSQL parser"))
	}
	fn, err := plpgsqlFunction(text)
	if err != nil {
		return refuseUnparseable("the PL/pgSQL body of the " + r.what + ": " + err.Error())
	}
	exprs, names := collectExpressions(fn)
	names.vars = append(names.vars, aliases(body, toks)...)
	if len(exprs) > maxBodyExpressions {
		// Each one costs a parse and a print: bound the work one
		// statement can ask for.
		return refuseTooDeep(fmt.Sprintf("holds a body with %d SQL expressions (limit %d)", len(exprs), maxBodyExpressions))
	}
	names.labels = append(names.labels, r.labels...)
	if err := e.recordDefaults(body, toks, names.recs); err != nil {
		return err
	}
	var edits []*edit
	var results []*Result
	for _, x := range exprs {
		ed, res, err := e.rewriteExpression(r, x)
		if err != nil {
			return err
		}
		if ed != nil {
			edits = append(edits, ed)
			results = append(results, res)
		}
	}
	if len(edits) == 0 {
		return nil
	}
	if err := e.checkNames(edits, names); err != nil {
		return err
	}
	newBody, ok := relocate(body, toks, edits)
	if !ok {
		return unsupported("PL/pgSQL whose embedded SQL cannot be located unambiguously in the body", nil)
	}
	// The new body must parse into the same function with exactly the new
	// query texts: anything else means a text was put in the wrong place.
	for _, ed := range edits {
		ed.x.obj["query"] = ed.newQuery
	}
	printed, err := e.setBody(r, newBody)
	if err != nil {
		return err
	}
	got, err := plpgsqlFunction(printed)
	if err != nil || !sameFunction(fn, got) {
		r.parts[0].Sval = body
		return unsupported("PL/pgSQL whose rewritten body does not parse back as intended", nil)
	}
	for _, res := range results {
		e.applyAll(res)
	}
	return nil
}

// dollarQuote writes s in a dollar quote whose tag it does not contain.
func dollarQuote(s string) string {
	for i := 0; ; i++ {
		tag := "$tombstone" + strconv.Itoa(i) + "$"
		if strings.Index(s+tag, tag) == len(s) {
			return tag + s + tag
		}
	}
}

// plpgsqlFunction parses the routine in text with pg_query's PL/pgSQL
// parser and returns its PLpgSQL_function object.
func plpgsqlFunction(text string) (map[string]any, error) {
	out, err := pgParsePlPgSQLToJSON(text)
	if err != nil {
		return nil, err
	}
	var funcs []map[string]any
	if err := json.Unmarshal([]byte(out), &funcs); err != nil {
		return nil, err
	}
	if len(funcs) != 1 {
		return nil, fmt.Errorf("%d PL/pgSQL functions where one was expected", len(funcs))
	}
	fn, ok := funcs[0]["PLpgSQL_function"].(map[string]any)
	if !ok {
		return nil, errors.New("no PL/pgSQL function in the parse")
	}
	return fn, nil
}

// plNames are the names a PL/pgSQL body declares: its variables (rows
// and records included), record variables alone, and block and loop labels.
type plNames struct{ vars, recs, labels []string }

// collectExpressions lists every PLpgSQL_expr in the parsed function, in
// the order of the tree, and the names it declares.
func collectExpressions(fn map[string]any) ([]*expression, *plNames) {
	var exprs []*expression
	names := &plNames{}
	var datums []any
	if d, ok := fn["datums"].([]any); ok {
		datums = d
	}
	caseVarName := func(fields map[string]any) string {
		no, ok := fields["t_varno"].(float64)
		if !ok || int(no) < 0 || int(no) >= len(datums) {
			return ""
		}
		v, _ := datums[int(no)].(map[string]any)
		vv, _ := v["PLpgSQL_var"].(map[string]any)
		name, _ := vv["refname"].(string)
		return name
	}
	// walk visits v, held in field of a node of type holder; caseVar is
	// the variable of the simple CASE whose WHEN list is being walked.
	var walk func(v any, holder, field, caseVar string, into bool)
	walk = func(v any, holder, field, caseVar string, into bool) {
		switch x := v.(type) {
		case []any:
			for _, it := range x {
				walk(it, holder, field, caseVar, into)
			}
		case map[string]any:
			for typ, inner := range x {
				fields, ok := inner.(map[string]any)
				if !ok {
					continue
				}
				if typ == "PLpgSQL_expr" {
					q, _ := fields["query"].(string)
					mode, _ := fields["parseMode"].(float64)
					ex := &expression{obj: fields, query: q, mode: int(mode), holder: holder, field: field, into: into}
					if holder == "PLpgSQL_case_when" && field == "expr" {
						ex.caseVar = caseVar
					}
					exprs = append(exprs, ex)
					continue
				}
				if s, ok := fields["refname"].(string); ok {
					names.vars = append(names.vars, s)
					if typ == "PLpgSQL_rec" {
						names.recs = append(names.recs, s)
					}
				}
				if s, ok := fields["label"].(string); ok {
					names.labels = append(names.labels, s)
				}
				if (typ == "PLpgSQL_var" || typ == "PLpgSQL_rec" || typ == "PLpgSQL_row") && holder != "PLpgSQL_function" {
					// A variable printed again where a statement uses it
					// (a FOR loop's variable): its expressions were listed
					// with the datums.
					continue
				}
				cv := caseVar
				if typ == "PLpgSQL_stmt_case" {
					cv = caseVarName(fields)
				}
				isInto, _ := fields["into"].(bool)
				for _, k := range sortedKeys(fields) {
					walk(fields[k], typ, k, cv, isInto && typ == "PLpgSQL_stmt_execsql")
				}
			}
		}
	}
	walk(map[string]any{"PLpgSQL_function": fn}, "", "", "", false)
	return exprs, names
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dynamicQuery reports whether x is the SQL text of a dynamic statement.
func dynamicQuery(x *expression) bool {
	switch {
	case x.holder == "PLpgSQL_stmt_dynexecute" && x.field == "query",
		x.holder == "PLpgSQL_stmt_dynfors" && x.field == "query",
		x.holder == "PLpgSQL_stmt_open" && x.field == "dynquery",
		x.holder == "PLpgSQL_stmt_return_query" && x.field == "dynquery":
		return true
	}
	return false
}

// rewriteExpression rewrites one expression. It returns a nil edit when
// the expression stays as it is.
func (e *engine) rewriteExpression(r *routine, x *expression) (*edit, *Result, error) {
	q := x.query
	switch {
	case dynamicQuery(x):
		return e.rewriteDynamic(r, x)
	case x.field == "argquery":
		// Cursor arguments are reassembled by plpgsql, not a slice of
		// the body: they may pass unchanged, but cannot be rewritten.
		res, ref := e.embeddedRewrite("SELECT " + q)
		if ref != nil {
			return nil, nil, ref
		}
		if res.Changed {
			return nil, nil, unsupported("PL/pgSQL cursor arguments that read a soft-delete table", firstTable(res))
		}
		return nil, nil, nil
	case x.mode == modeStatement:
		res, ref := e.embeddedRewrite(q)
		if ref != nil {
			return nil, nil, ref
		}
		if !res.Changed {
			return nil, res, nil
		}
		out := respell(res.SQL)
		ed := &edit{x: x, how: matchVerbatim, pattern: q, repl: out, newQuery: out, checkSQL: res.SQL}
		switch {
		case x.holder == "PLpgSQL_stmt_perform":
			rest, ok := strings.CutPrefix(out, "SELECT ")
			body, okq := strings.CutPrefix(q, "SELECT")
			if !ok || !okq {
				return nil, nil, unsupported("PERFORM whose rewrite is not a plain SELECT", firstTable(res))
			}
			ed.how, ed.pattern, ed.repl = matchPerform, body, "PERFORM "+rest
		case x.into:
			ed.how = matchInto
		}
		return ed, res, nil
	case x.mode == modeExpr && x.caseVar != "":
		prefix := `"` + x.caseVar + `" IN (`
		list, ok := strings.CutPrefix(q, prefix)
		if !ok || !strings.HasSuffix(list, ")") {
			return nil, nil, unsupported("a PL/pgSQL CASE whose WHEN list cannot be read", nil)
		}
		list = list[:len(list)-1]
		stripped, res, err := e.rewriteSelectList(list)
		if err != nil || stripped == "" {
			return nil, res, err
		}
		return &edit{x: x, how: matchVerbatim, pattern: list, repl: stripped, newQuery: prefix + stripped + ")", checkSQL: res.SQL}, res, nil
	case x.mode == modeExpr:
		stripped, res, err := e.rewriteSelectList(q)
		if err != nil || stripped == "" {
			return nil, res, err
		}
		return &edit{x: x, how: matchVerbatim, pattern: q, repl: stripped, newQuery: stripped, checkSQL: res.SQL}, res, nil
	case x.mode >= modeAssign1 && x.mode <= modeAssign3:
		target, value, ok := splitAssignment(q)
		if !ok {
			return nil, nil, unsupported("a PL/pgSQL assignment that cannot be read", nil)
		}
		if e.filter.mayMatch(target) {
			// A subscript of the target may hold a subquery; it is not
			// rewritten.
			return nil, nil, unsupported("a PL/pgSQL assignment whose target may read a soft-delete table", nil)
		}
		stripped, res, err := e.rewriteSelectList(value)
		if err != nil || stripped == "" {
			return nil, res, err
		}
		repl := target + " " + stripped
		return &edit{x: x, how: matchVerbatim, pattern: q, repl: repl, newQuery: repl, checkSQL: res.SQL}, res, nil
	}
	return nil, nil, unsupported(fmt.Sprintf("a PL/pgSQL expression of parse mode %d", x.mode), nil)
}

// rewriteSelectList rewrites an expression (PL/pgSQL's expression mode:
// a SELECT without the SELECT keyword) and returns its new text, or ""
// when it stays.
func (e *engine) rewriteSelectList(expr string) (string, *Result, error) {
	res, ref := e.embeddedRewrite("SELECT " + expr)
	if ref != nil {
		return "", nil, ref
	}
	if !res.Changed {
		return "", res, nil
	}
	stripped, ok := strings.CutPrefix(res.SQL, "SELECT ")
	if !ok {
		return "", nil, unsupported("a PL/pgSQL expression whose rewrite is not a plain SELECT", firstTable(res))
	}
	return stripped, res, nil
}

// rewriteDynamic judges the SQL text of EXECUTE and its kin. One string
// literal is rewritten as the statement it holds; anything else is built
// at run time and refused.
func (e *engine) rewriteDynamic(r *routine, x *expression) (*edit, *Result, error) {
	sql, ok := stringLiteral(x.query)
	if !ok {
		return nil, nil, unseen("dynamic SQL in the "+r.what+" (EXECUTE of a string built at run time) is out of Tombstone's sight",
			"The statement it runs is only known when it runs; it could delete rows for good or read deleted rows.",
			"EXECUTE a single string literal, write the statement directly, or run it as a privileged role.")
	}
	if strings.ContainsRune(x.query, '\\') {
		return nil, nil, RefuseLexing("an EXECUTE string with a backslash in the " + r.what + " reads differently when standard_conforming_strings is off")
	}
	res, ref := e.embeddedRewrite(sql)
	if ref != nil {
		return nil, nil, ref
	}
	if !res.Changed {
		return nil, res, nil
	}
	lit := quoteLiteral(respell(res.SQL))
	return &edit{x: x, how: matchVerbatim, pattern: x.query, repl: lit, newQuery: lit, checkSQL: res.SQL}, res, nil
}

// respell writes the routines among the statements of sql (rewritten
// SQL, as pg_query prints it) with bodies in dollar quotes of their own
// tag. pg_query's printer writes a DO body in $$, or $outer$ when the body
// holds $$: a DO around a DO around a DO would not read back.
func respell(sql string) string {
	tree, err := pgParse(sql)
	if err != nil {
		return sql
	}
	parts := make([]string, 0, len(tree.Stmts))
	routines := 0
	for _, raw := range tree.Stmts {
		out, ok := spellRoutine(raw.Stmt)
		if ok {
			routines++
		} else if out, err = printOne(raw.Stmt); err != nil {
			return sql
		}
		parts = append(parts, out)
	}
	if routines == 0 {
		return sql
	}
	return strings.Join(parts, "; ")
}

// spellRoutine prints a DO or CREATE FUNCTION with one AS string, its body
// in a dollar quote whose tag the body does not hold.
func spellRoutine(n *pg.Node) (string, bool) {
	const marker = "tombstone_plpgsql_body_marker"
	body := routineBodyOf(n)
	var copied *pg.Node
	switch {
	case n.GetDoStmt() != nil:
		d := proto.Clone(n.GetDoStmt()).(*pg.DoStmt)
		for _, a := range d.Args {
			if de := a.GetDefElem(); de.GetDefname() == "as" && de.Arg.GetString_() != nil {
				de.Arg = pg.MakeStrNode(marker)
			}
		}
		copied = &pg.Node{Node: &pg.Node_DoStmt{DoStmt: d}}
	case n.GetCreateFunctionStmt() != nil:
		f := proto.Clone(n.GetCreateFunctionStmt()).(*pg.CreateFunctionStmt)
		for _, o := range f.Options {
			if de := o.GetDefElem(); de.GetDefname() == "as" {
				l := de.Arg.GetList()
				if l == nil || len(l.Items) != 1 {
					return "", false
				}
				l.Items[0] = pg.MakeStrNode(marker)
			}
		}
		copied = &pg.Node{Node: &pg.Node_CreateFunctionStmt{CreateFunctionStmt: f}}
	default:
		return "", false
	}
	out, err := printOne(copied)
	if err != nil || strings.Count(out, "$$"+marker+"$$") != 1 {
		return "", false
	}
	return strings.Replace(out, "$$"+marker+"$$", dollarQuote(body), 1), true
}

// stringLiteral returns the value of expr when it is exactly one string
// literal.
func stringLiteral(expr string) (string, bool) {
	toks, err := pg.Scan(expr)
	if err != nil || len(toks.Tokens) != 1 || toks.Tokens[0].Token != pg.Token_SCONST && toks.Tokens[0].Token != pg.Token_USCONST {
		return "", false
	}
	tree, err := pgParse("SELECT " + expr)
	if err != nil || len(tree.Stmts) != 1 {
		return "", false
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return "", false
	}
	c := sel.TargetList[0].GetResTarget().GetVal().GetAConst()
	if c == nil || c.GetSval() == nil {
		return "", false
	}
	return c.GetSval().Sval, true
}

// quoteLiteral writes s as a string literal that reads the same whatever
// standard_conforming_strings says: an E'...' literal once it holds a
// backslash.
func quoteLiteral(s string) string {
	q := strings.ReplaceAll(s, "'", "''")
	if strings.ContainsRune(s, '\\') {
		return "E'" + strings.ReplaceAll(q, `\`, `\\`) + "'"
	}
	return "'" + q + "'"
}

// splitAssignment cuts "target := value" (or "target = value") after the
// assignment operator: target keeps the operator.
func splitAssignment(q string) (target, value string, ok bool) {
	toks, err := pg.Scan(q)
	if err != nil {
		return "", "", false
	}
	depth := 0
	for _, t := range toks.Tokens {
		switch t.Token {
		case pg.Token_ASCII_40, pg.Token_ASCII_91:
			depth++
		case pg.Token_ASCII_41, pg.Token_ASCII_93:
			depth--
		case pg.Token_COLON_EQUALS, pg.Token_ASCII_61:
			if depth == 0 {
				return q[:t.End], q[t.End:], strings.TrimSpace(q[t.End:]) != ""
			}
		}
	}
	return "", "", false
}

// firstTable is a configured table a rewrite touched, for a refusal.
func firstTable(res *Result) *policy.Table {
	if res == nil || len(res.Applied) == 0 {
		return nil
	}
	return res.Applied[0].Table
}

// recordDefaults refuses a DEFAULT of a record variable that reads a
// soft-delete table. pg_query builds a record variable for a type written
// as a prefix of RECORD, and its JSON does not carry a record's DEFAULT
// (PLpgSQL_rec's default_val is not printed), so the declaration is found
// in the tokens: [DECLARE | ;] name [CONSTANT] type ... {:= | = | DEFAULT}
// value ; where name is a record variable.
func (e *engine) recordDefaults(body string, all []*pg.ScanToken, recs []string) error {
	if len(recs) == 0 {
		return nil
	}
	var toks []*pg.ScanToken
	for _, t := range all {
		if t.Token != pg.Token_SQL_COMMENT && t.Token != pg.Token_C_COMMENT {
			toks = append(toks, t)
		}
	}
	text := func(i int) string { return body[toks[i].Start:toks[i].End] }
	for i := range toks {
		w := text(i)
		if w == "" || len(w) > len("record") || !strings.EqualFold(w, "record"[:len(w)]) {
			continue
		}
		j := i - 1
		if j >= 0 && strings.EqualFold(text(j), "constant") {
			j--
		}
		if j < 1 || !slices.Contains(recs, identName(text(j))) ||
			!(strings.EqualFold(text(j-1), "declare") || text(j-1) == ";" || text(j-1) == ">>") {
			continue
		}
		depth, start := 0, -1
		for k := i + 1; k < len(toks); k++ {
			t := toks[k]
			switch {
			case t.Token == pg.Token_ASCII_40 || t.Token == pg.Token_ASCII_91:
				depth++
			case t.Token == pg.Token_ASCII_41 || t.Token == pg.Token_ASCII_93:
				depth--
			case start < 0 && depth == 0 && (t.Token == pg.Token_COLON_EQUALS || t.Token == pg.Token_ASCII_61 || t.Token == pg.Token_DEFAULT):
				start = k + 1
			}
			if t.Token != pg.Token_ASCII_59 || depth != 0 {
				continue
			}
			if start < 0 || start >= k {
				break
			}
			value := body[toks[start].Start:toks[k-1].End]
			res, ref := e.embeddedRewrite("SELECT " + value)
			if ref != nil {
				return ref
			}
			if res.Changed {
				return unsupported("the DEFAULT of PL/pgSQL record variable "+text(j), firstTable(res))
			}
			break
		}
	}
	return nil
}

// aliases are the names declared with name ALIAS FOR ...: they make no
// variable of their own, so the parsed function does not list them.
func aliases(body string, all []*pg.ScanToken) []string {
	var toks []*pg.ScanToken
	for _, t := range all {
		if t.Token != pg.Token_SQL_COMMENT && t.Token != pg.Token_C_COMMENT {
			toks = append(toks, t)
		}
	}
	var names []string
	for i := 1; i+1 < len(toks); i++ {
		if strings.EqualFold(body[toks[i].Start:toks[i].End], "alias") && strings.EqualFold(body[toks[i+1].Start:toks[i+1].End], "for") {
			names = append(names, identName(body[toks[i-1].Start:toks[i-1].End]))
		}
	}
	return names
}

// identName is how plpgsql names the variable an identifier token spells.
func identName(tok string) string {
	if len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"' {
		return strings.ReplaceAll(tok[1:len(tok)-1], `""`, `"`)
	}
	return strings.ToLower(tok)
}

// checkNames refuses a rewrite whose added column references plpgsql
// could take for one of its variables: deleted_at when a variable has that
// name, q.deleted_at when q is a variable (a record's field) or a label
// above a variable named deleted_at. Which one wins is up to
// plpgsql.variable_conflict, which any session can set. Every variable
// counts as a possible record: pg_query cannot tell a composite type.
func (e *engine) checkNames(edits []*edit, names *plNames) error {
	set := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, n := range l {
			m[strings.ToLower(n)] = true
		}
		return m
	}
	vars, labels := set(names.vars), set(names.labels)
	cols := map[string]bool{}
	for _, t := range e.policy.Tables() {
		cols[strings.ToLower(t.DeletedAt)] = true
		if t.DeletedBy != "" {
			cols[strings.ToLower(t.DeletedBy)] = true
		}
	}
	for _, ed := range edits {
		tree, err := pgParse(ed.checkSQL)
		if err != nil {
			return refuseUnparseable(err.Error())
		}
		var clash string
		for _, raw := range tree.Stmts {
			_ = eachNode(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) error {
				n, ok := m.Interface().(*pg.Node)
				if !ok || n.GetColumnRef() == nil || clash != "" {
					return nil
				}
				var parts []string
				for _, f := range n.GetColumnRef().Fields {
					parts = append(parts, strings.ToLower(f.GetString_().GetSval()))
				}
				if len(parts) == 0 {
					return nil
				}
				col := parts[len(parts)-1]
				if !cols[col] {
					return nil
				}
				if vars[col] && (len(parts) == 1 || slices.ContainsFunc(parts[:len(parts)-1], func(q string) bool { return labels[q] })) {
					clash = col
				}
				for _, q := range parts[:len(parts)-1] {
					if vars[q] && clash == "" {
						clash = q
					}
				}
				return nil
			})
		}
		if clash != "" {
			return unsupported("PL/pgSQL that declares "+strconv.Quote(clash)+", a name the soft-delete filter uses,", nil)
		}
	}
	return nil
}

// span is where a located edit goes in the body.
type span struct {
	start, end int
	repl       string
}

// relocate finds every edited expression in the body and returns the body
// with each replaced. Edits with the same pattern are the same text
// rewritten the same way, so they must be found exactly as many times as
// there are of them; longer patterns claim their place first, so a text
// that also occurs inside a longer expression is not taken from it.
func relocate(body string, toks []*pg.ScanToken, edits []*edit) (string, bool) {
	isStart := make(map[int]bool, len(toks))
	isEnd := make(map[int]bool, len(toks))
	var starts []int
	for _, t := range toks {
		isStart[int(t.Start)] = true
		isEnd[int(t.End)] = true
		starts = append(starts, int(t.Start))
	}
	type group struct {
		how     matching
		pattern string
		repl    string
		n       int
	}
	// A statement with INTO after its text reads like one without INTO:
	// matchInto finds both, so they are one group.
	kind := func(h matching) matching {
		if h == matchInto {
			return matchVerbatim
		}
		return h
	}
	var groups []*group
	for _, ed := range edits {
		found := false
		for _, g := range groups {
			if kind(g.how) == kind(ed.how) && g.pattern == ed.pattern {
				if g.repl != ed.repl {
					return "", false
				}
				if ed.how == matchInto {
					g.how = matchInto
				}
				g.n++
				found = true
			}
		}
		if !found {
			groups = append(groups, &group{how: ed.how, pattern: ed.pattern, repl: ed.repl, n: 1})
		}
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return len(b.pattern) - len(a.pattern) })
	var claimed []span
	overlaps := func(s, e int) bool {
		for _, c := range claimed {
			if s < c.end && c.start < e {
				return true
			}
		}
		return false
	}
	for _, g := range groups {
		var found []span
		for _, s := range starts {
			end, repl, ok := matchAt(body, s, g.how, g.pattern, g.repl, isStart)
			if !ok || !isEnd[end] || overlaps(s, end) {
				continue
			}
			if len(found) > 0 && s < found[len(found)-1].end {
				continue
			}
			found = append(found, span{s, end, repl})
		}
		if len(found) != g.n {
			return "", false
		}
		claimed = append(claimed, found...)
	}
	slices.SortFunc(claimed, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	last := 0
	for _, c := range claimed {
		b.WriteString(body[last:c.start])
		// The new text must not glue onto its neighbours (IF(x)THEN).
		if c.start > 0 && !isSpace(body[c.start-1]) && !strings.ContainsRune("(,[;", rune(body[c.start-1])) {
			b.WriteByte(' ')
		}
		b.WriteString(c.repl)
		// Keep the line numbers of what follows (error messages cite
		// them); a newline also separates the text from the next token.
		lines := strings.Count(body[c.start:c.end], "\n") - strings.Count(c.repl, "\n")
		if lines > 0 {
			b.WriteString(strings.Repeat("\n", lines))
		} else if c.end < len(body) && !isSpace(body[c.end]) && !strings.ContainsRune(";),]", rune(body[c.end])) {
			b.WriteByte(' ')
		}
		last = c.end
	}
	b.WriteString(body[last:])
	return b.String(), true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// matchAt reports whether an expression of the pattern starts at s, where
// it ends, and the text that replaces it there.
func matchAt(body string, s int, how matching, pattern, repl string, isStart map[int]bool) (int, string, bool) {
	switch how {
	case matchVerbatim:
		if strings.HasPrefix(body[s:], pattern) {
			return s + len(pattern), repl, true
		}
	case matchPerform:
		const kw = "PERFORM"
		if len(body)-s >= len(kw) && strings.EqualFold(body[s:s+len(kw)], kw) && strings.HasPrefix(body[s+len(kw):], pattern) {
			return s + len(kw) + len(pattern), repl, true
		}
	case matchInto:
		q := pattern
		if len(body)-s < len(q) {
			return 0, "", false
		}
		first, last := -1, -1
		for i := 0; i < len(q); i++ {
			if body[s+i] == q[i] {
				continue
			}
			if q[i] != ' ' {
				return 0, "", false
			}
			if first < 0 {
				first = i
			}
			last = i
		}
		if first < 0 {
			return s + len(q), repl, true // INTO after the statement's text
		}
		for i := first; i <= last; i++ {
			if q[i] != ' ' {
				return 0, "", false
			}
		}
		into := body[s+first : s+last+1]
		if !isStart[s+first] || len(into) < 4 || !strings.EqualFold(into[:4], "into") {
			return 0, "", false
		}
		// plpgsql cuts INTO out wherever it stands: at the end of the
		// rewritten statement it means the same.
		return s + len(q), repl + " " + into, true
	}
	return 0, "", false
}

// sameFunction reports whether two parsed functions are equal apart from
// line numbers.
func sameFunction(a, b map[string]any) bool {
	return reflect.DeepEqual(withoutLines(a), withoutLines(b))
}

func withoutLines(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if k != "lineno" {
				out[k] = withoutLines(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = withoutLines(val)
		}
		return out
	}
	return v
}
