//go:build !amd64 && !arm64

// tomb_call_on_stack for architectures without an assembly version:
// swapcontext(3), which also saves the signal mask (a system call each
// way).

#include <stdint.h>
#include <ucontext.h>

static __thread void (*call_fn)(void *);
static __thread void *call_arg;

static void trampoline(void) { call_fn(call_arg); }

void tomb_call_on_stack(void *arg, void (*fn)(void *), void *top) {
	ucontext_t back, on;
	getcontext(&on);
	on.uc_stack.ss_sp = (char *)top - ((size_t)64 << 20);
	on.uc_stack.ss_size = (size_t)64 << 20;
	on.uc_link = &back;
	call_fn = fn;
	call_arg = arg;
	makecontext(&on, trampoline, 0);
	swapcontext(&back, &on);
}
