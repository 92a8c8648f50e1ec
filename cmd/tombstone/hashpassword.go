package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// hashPassword prints the bcrypt hash of a password read from stdin, for
// console.users[].password_hash. It reads stdin, not a flag or an
// argument, so that the password stays out of the shell's history and
// the process list.
func hashPassword(std stdio, args []string) error {
	fs := newFlags("hash-password", `hash-password < FILE

Reads one line, a password, from standard input and prints its bcrypt hash
(cost 10), to paste into console.users[].password_hash. The line's end
(\n or \r\n) is not part of the password. The input is not hidden: type
it after "read -rs PW; printf '%s\n' "$PW" | tombstone hash-password", or
pipe it from a password manager.`, std)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	line, err := bufio.NewReader(std.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	switch {
	case pw == "":
		return usagef("no password on stdin: write it as one line, such as: printf '%%s\\n' \"$PW\" | tombstone hash-password")
	case len(pw) > 72:
		// bcrypt reads 72 bytes; a longer password would be cut.
		return usagef("the password is %d bytes long; bcrypt uses at most 72, so write a shorter one", len(pw))
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	fmt.Fprintln(std.out, string(hash))
	return nil
}
