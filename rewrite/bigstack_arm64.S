// void tomb_call_on_stack(void *arg, void (*fn)(void *), void *top)
//
// Calls fn(arg) with the stack pointer at top (16-byte aligned) and
// returns on the caller's stack (see bigstack_amd64.S).

	.text
	.globl	tomb_call_on_stack
	.type	tomb_call_on_stack, %function
tomb_call_on_stack:
	.cfi_startproc
	stp	x29, x30, [sp, #-16]!
	.cfi_def_cfa_offset 16
	.cfi_offset x29, -16
	.cfi_offset x30, -8
	mov	x29, sp
	.cfi_def_cfa_register x29
	mov	sp, x2
	blr	x1
	mov	sp, x29
	ldp	x29, x30, [sp], #16
	.cfi_def_cfa sp, 0
	ret
	.cfi_endproc
	.size	tomb_call_on_stack, .-tomb_call_on_stack

	.section	.note.GNU-stack,"",%progbits
