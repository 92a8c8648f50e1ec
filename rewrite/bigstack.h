// Declarations for bigstack.c: pg_query's result types (pg_query.h of
// pg_query_go v6.2.5, which cgo cannot include from another module) and
// the calls that run pg_query on a parser stack.

#include <stddef.h>

typedef struct {
	char *message;
	char *funcname;
	char *filename;
	int lineno;
	int cursorpos;
	char *context;
} PgQueryError;

typedef struct {
	size_t len;
	char *data;
} PgQueryProtobuf;

typedef struct {
	PgQueryProtobuf parse_tree;
	char *stderr_buffer;
	PgQueryError *error;
} PgQueryProtobufParseResult;

typedef struct {
	char *query;
	PgQueryError *error;
} PgQueryDeparseResult;

typedef struct {
	char *plpgsql_funcs;
	PgQueryError *error;
} PgQueryPlpgsqlParseResult;

// Each returns 0, or -1 when no parser stack could be had (nothing ran).
int tomb_parse(const char *sql, size_t len, PgQueryProtobufParseResult *out);
int tomb_deparse(void *data, size_t len, PgQueryDeparseResult *out);
int tomb_parse_plpgsql(const char *sql, size_t len, PgQueryPlpgsqlParseResult *out);
int tomb_noop(void);

// 1 when pg_query's entry points were linked in.
int tomb_linked(void);

// The size of parser stacks made from now on (tests only).
void tomb_set_stack_size(size_t bytes);
size_t tomb_stack_size(void);

void tomb_free_parse_result(PgQueryProtobufParseResult r);
void tomb_free_deparse_result(PgQueryDeparseResult r);
void tomb_free_plpgsql_result(PgQueryPlpgsqlParseResult r);
