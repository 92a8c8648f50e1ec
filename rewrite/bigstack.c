// Parser stacks: pg_query's parse, deparse and PL/pgSQL parse run on a
// stack of their own, reserved large, so that no input can overflow the
// stack of the thread that calls them (see bigstack.go for the sizes).

#include "bigstack.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

// pg_query's entry points, defined by pg_query_go's parser package and
// resolved when the program is linked. Weak, so that cgo's check link of
// this package alone (which does not include that package) succeeds.
extern PgQueryProtobufParseResult pg_query_parse_protobuf(const char *input) __attribute__((weak));
extern PgQueryDeparseResult pg_query_deparse_protobuf(PgQueryProtobuf tree) __attribute__((weak));
extern PgQueryPlpgsqlParseResult pg_query_parse_plpgsql(const char *input) __attribute__((weak));
extern void pg_query_free_protobuf_parse_result(PgQueryProtobufParseResult result) __attribute__((weak));
extern void pg_query_free_deparse_result(PgQueryDeparseResult result) __attribute__((weak));
extern void pg_query_free_plpgsql_parse_result(PgQueryPlpgsqlParseResult result) __attribute__((weak));

// Defined in bigstack_<arch>.S: calls fn(arg) with the stack pointer at
// top, and returns on the caller's stack.
void tomb_call_on_stack(void *arg, void (*fn)(void *), void *top);

// A reserved stack. The guard below it is mapped PROT_NONE, so an
// overflow faults instead of writing into whatever lies below; it is 1
// MiB because a single frame can be larger than a page.
struct stack {
	struct stack *next;
	char *base; // lowest usable byte, just above the guard
	size_t size;
};

enum {
	GUARD = 1 << 20,
	KEEP = 1 << 20,        // bytes at the top left mapped after a long input
	LONG_INPUT = 64 << 10, // inputs longer than this give their stack back afterwards
	MAX_STACKS = 64,       // callers beyond this many at once wait for a stack
};

#define DEFAULT_STACK ((size_t)4 << 30)
#define MIN_STACK ((size_t)64 << 20)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static struct stack *pool;
static int stacks; // made so far
static size_t want_size = DEFAULT_STACK;

void tomb_set_stack_size(size_t bytes) {
	pthread_mutex_lock(&mu);
	want_size = bytes;
	pthread_mutex_unlock(&mu);
}

size_t tomb_stack_size(void) {
	pthread_mutex_lock(&mu);
	size_t n = want_size;
	pthread_mutex_unlock(&mu);
	return n;
}

// new_stack reserves a stack: address space only (MAP_NORESERVE: no
// memory is committed until a page is touched). Where the reservation is
// refused (an address-space limit, strict overcommit), it tries half the
// size, down to MIN_STACK.
static struct stack *new_stack(size_t size) {
	struct stack *s = malloc(sizeof *s);
	if (s == NULL)
		return NULL;
	for (;;) {
		char *m = mmap(NULL, size + GUARD, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
		if (m != MAP_FAILED) {
			if (mprotect(m, GUARD, PROT_NONE) != 0) {
				munmap(m, size + GUARD);
				break;
			}
#ifdef MADV_NOHUGEPAGE
			madvise(m + GUARD, size, MADV_NOHUGEPAGE);
#endif
			s->base = m + GUARD;
			s->size = size;
			return s;
		}
		if (size / 2 < MIN_STACK)
			break;
		size /= 2;
	}
	free(s);
	return NULL;
}

static struct stack *get_stack(void) {
	struct stack *s = NULL;
	pthread_mutex_lock(&mu);
	for (;;) {
		if (pool != NULL) {
			s = pool;
			pool = s->next;
			break;
		}
		if (stacks < MAX_STACKS) {
			stacks++;
			size_t size = want_size;
			pthread_mutex_unlock(&mu);
			s = new_stack(size);
			pthread_mutex_lock(&mu);
			if (s == NULL)
				stacks--;
			break;
		}
		pthread_cond_wait(&freed, &mu);
	}
	pthread_mutex_unlock(&mu);
	return s;
}

// put_stack returns a stack to the pool. After a long input the pages it
// touched are given back, but for the top KEEP bytes that every call uses.
static void put_stack(struct stack *s, size_t input_len) {
	if (input_len > LONG_INPUT && s->size > KEEP)
		madvise(s->base, s->size - KEEP, MADV_DONTNEED);
	pthread_mutex_lock(&mu);
	s->next = pool;
	pool = s;
	pthread_cond_signal(&freed);
	pthread_mutex_unlock(&mu);
}

enum kind { PARSE, DEPARSE, PLPGSQL, NOOP };

struct job {
	enum kind kind;
	const char *sql;
	PgQueryProtobuf tree;
	PgQueryProtobufParseResult parse;
	PgQueryDeparseResult deparse;
	PgQueryPlpgsqlParseResult plpgsql;
};

static void entry(void *arg) {
	struct job *j = arg;
	switch (j->kind) {
	case PARSE:
		j->parse = pg_query_parse_protobuf(j->sql);
		break;
	case DEPARSE:
		j->deparse = pg_query_deparse_protobuf(j->tree);
		break;
	case PLPGSQL:
		j->plpgsql = pg_query_parse_plpgsql(j->sql);
		break;
	case NOOP:
		break;
	}
}

static int run(struct job *j, size_t input_len) {
	struct stack *s = get_stack();
	if (s == NULL)
		return -1;
	void *top = (void *)((uintptr_t)(s->base + s->size) & ~(uintptr_t)15);
	tomb_call_on_stack(j, entry, top);
	put_stack(s, input_len);
	return 0;
}

int tomb_linked(void) {
	return pg_query_parse_protobuf != NULL && pg_query_deparse_protobuf != NULL &&
		pg_query_parse_plpgsql != NULL && pg_query_free_protobuf_parse_result != NULL &&
		pg_query_free_deparse_result != NULL && pg_query_free_plpgsql_parse_result != NULL;
}

int tomb_parse(const char *sql, size_t len, PgQueryProtobufParseResult *out) {
	struct job j = {.kind = PARSE, .sql = sql};
	if (!tomb_linked() || run(&j, len) != 0)
		return -1;
	*out = j.parse;
	return 0;
}

int tomb_deparse(void *data, size_t len, PgQueryDeparseResult *out) {
	struct job j = {.kind = DEPARSE, .tree = {.len = len, .data = data}};
	if (!tomb_linked() || run(&j, len) != 0)
		return -1;
	*out = j.deparse;
	return 0;
}

int tomb_parse_plpgsql(const char *sql, size_t len, PgQueryPlpgsqlParseResult *out) {
	struct job j = {.kind = PLPGSQL, .sql = sql};
	if (!tomb_linked() || run(&j, len) != 0)
		return -1;
	*out = j.plpgsql;
	return 0;
}

int tomb_noop(void) {
	struct job j = {.kind = NOOP};
	return run(&j, 0);
}

void tomb_free_parse_result(PgQueryProtobufParseResult r) { pg_query_free_protobuf_parse_result(r); }
void tomb_free_deparse_result(PgQueryDeparseResult r) { pg_query_free_deparse_result(r); }
void tomb_free_plpgsql_result(PgQueryPlpgsqlParseResult r) { pg_query_free_plpgsql_parse_result(r); }
