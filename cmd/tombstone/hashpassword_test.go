package main

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tombstone-proxy/tombstone/internal/config"
)

func TestHashPassword(t *testing.T) {
	for _, in := range []string{"correct horse\n", "correct horse\r\n", "correct horse"} {
		code, out, errOut := runCmd(t, in, "hash-password")
		hash := strings.TrimSuffix(out, "\n")
		if code != exitOK || errOut != "" || strings.Count(out, "\n") != 1 {
			t.Fatalf("hash-password < %q: exit %d\n%s%s", in, code, out, errOut)
		}
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != 10 {
			t.Errorf("hash %q: cost %d, %v; want a bcrypt hash of cost 10", hash, cost, err)
		}
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")) != nil {
			t.Errorf("hash %q of %q does not match the password without its line end", hash, in)
		}
		// And the configuration takes it.
		if _, err := config.Parse([]byte("console:\n  listen: 127.0.0.1:9188\n  dsn: x\n  users: [{name: a, password_hash: '"+hash+"'}]\n"), ""); err != nil {
			t.Errorf("config rejects the printed hash: %v", err)
		}
	}
	// Only the first line is the password.
	code, out, _ := runCmd(t, "first\nsecond\n", "hash-password")
	if hash := strings.TrimSpace(out); code != exitOK || bcrypt.CompareHashAndPassword([]byte(hash), []byte("first")) != nil {
		t.Errorf("two lines: exit %d, %q does not hash the first", code, out)
	}
	for _, c := range []struct{ in, want string }{
		{"", "no password on stdin"},
		{"\n", "no password on stdin"},
		{strings.Repeat("x", 73) + "\n", "bcrypt uses at most 72"},
	} {
		code, out, errOut := runCmd(t, c.in, "hash-password")
		if code != exitUsage || out != "" || !strings.HasPrefix(errOut, "tombstone hash-password: ") || !strings.Contains(errOut, c.want) {
			t.Errorf("hash-password < %.10q: exit %d, stdout %q, stderr %q; want exit 2 saying %q", c.in, code, out, errOut, c.want)
		}
	}
	if code, _, errOut := runCmd(t, "pw\n", "hash-password", "pw"); code != exitUsage || !strings.Contains(errOut, `unexpected argument "pw"`) {
		t.Errorf("a password as an argument: exit %d, %s; want a usage error", code, errOut)
	}
}
