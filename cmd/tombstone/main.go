package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/tombstone-proxy/tombstone/internal/buildinfo"
	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/server"
)

// Exit codes, documented in doc.go and the usage text.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

const usage = `tombstone: soft deletes for PostgreSQL, enforced by a wire-protocol proxy.

Usage:
  tombstone serve --config FILE                      run the proxy
  tombstone rewrite --config FILE [--role ROLE] [--dsn DSN [--check]] SQL
                                                     show what the proxy does with SQL ("-" reads stdin)
  tombstone check-config --config FILE               validate a configuration file and exit
  tombstone doctor --config FILE --dsn DSN           check a database's soft-delete schema
  tombstone migrate --config FILE --dsn DSN [--apply] [--views] [--rls]
                                                     print or apply the DDL that fixes what doctor finds
  tombstone restore --config FILE --dsn DSN --table T --where SQL [--cascade] [--dry-run]
                                                     bring soft-deleted rows back
  tombstone purge --config FILE --dsn DSN [--older-than 90d] [--table T] [--batch N] [--dry-run]
                                                     remove rows deleted longer ago than retention
  tombstone purge --config FILE --dsn DSN --table T --where SQL [--cascade] [--dry-run]
                                                     erase chosen rows, live or deleted, for good
  tombstone hash-password < FILE                     print the bcrypt hash of a password read from stdin,
                                                     for console.users[].password_hash
  tombstone version                                  print version and build information

Run "tombstone COMMAND --help" for a command's flags.

Exit codes: 0 success, 1 runtime error, 2 usage or configuration error.
`

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// stdio is where a command reads and writes.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
}

// run executes one command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	commands := map[string]func(stdio, []string) error{
		"serve":         serve,
		"rewrite":       dryRun,
		"check-config":  checkConfig,
		"migrate":       migrate,
		"doctor":        doctor,
		"restore":       restore,
		"purge":         purge,
		"hash-password": hashPassword,
		"version":       version,
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name, args := args[0], args[1:]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "tombstone: unknown command %q: want serve, rewrite, check-config, migrate, doctor, restore, purge, hash-password or version (see tombstone --help)\n", name)
		return exitUsage
	}
	return exitCode(cmd(stdio{stdin, stdout, stderr}, args), "tombstone "+name, stderr)
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// configError is an invalid configuration file; it may list several
// problems, one per line.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

// exitCode prints err, one line per problem, each prefixed with the
// command's name, and maps it to an exit code.
func exitCode(err error, name string, stderr io.Writer) int {
	var ue *usageError
	var ce *configError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s (see %s --help)\n", name, ue.msg, name)
		return exitUsage
	case errors.As(err, &ce):
		for _, line := range strings.Split(ce.Error(), "\n") {
			fmt.Fprintf(stderr, "%s: %s\n", name, line)
		}
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitRuntime
	}
}

// newFlags returns a subcommand's flag set. --help prints synopsis and
// flags to stdout; parse errors are returned, not printed.
func newFlags(name, synopsis string, std stdio) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.Usage = func() {
		fmt.Fprintf(std.out, "Usage: tombstone %s\n\nFlags:\n", synopsis)
		fs.SetOutput(std.out)
		fs.PrintDefaults()
		fs.SetOutput(discard{})
		fmt.Fprint(std.out, "\nExit codes: 0 success, 1 runtime error, 2 usage or configuration error.\n")
	}
	return fs
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// parse parses args and checks the number of positional arguments.
func parse(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // fs.Parse has printed the usage
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() != nargs {
		if nargs == 0 {
			return usagef("unexpected argument %q", fs.Arg(0))
		}
		return usagef("want %d argument(s) after the flags, got %d", nargs, fs.NArg())
	}
	return nil
}

// configFlag registers --config.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "configuration `FILE` (see config.example.yaml)")
}

// loadConfig loads the --config file and checks it as serve would (a
// declared cascade cycle, an unreadable key pair), so that every command
// rejects the same files.
func loadConfig(path string) (*config.File, error) {
	if path == "" {
		return nil, usagef("--config FILE is required")
	}
	f, err := config.Load(path)
	if err != nil {
		return nil, &configError{err}
	}
	if err := server.Check(f); err != nil {
		return nil, &configError{err}
	}
	return f, nil
}

func checkConfig(std stdio, args []string) error {
	fs := newFlags("check-config", "check-config --config FILE\n\nValidates the file (keys, values, ${VAR} expansion, table and column names,\nthat declared cascades form no cycle, that TLS files load) without starting\nanything.", std)
	path := configFlag(fs)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	f, err := loadConfig(*path)
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "%s: ok (mode %s, %d soft-delete tables, listen %s, upstream %s)\n", f.Path, f.Mode, len(f.Tables), f.Listen, f.Upstream)
	if c := f.Console; c.Enabled() {
		scheme := "http"
		if c.TLS.Enabled() {
			scheme = "https"
		}
		fmt.Fprintf(std.out, "console: %s://%s, %d user(s)\n", scheme, c.Listen, len(c.Users))
	}
	for i, t := range f.Tables {
		if t.QualifiedName() != t.Name {
			fmt.Fprintf(std.out, "note: tables[%d].name %q is the table %s as PostgreSQL folds it; double-quote a name to keep its case\n", i, t.Name, t.QualifiedName())
		}
	}
	return nil
}

func version(std stdio, args []string) error {
	fs := newFlags("version", "version\n\nPrints the version and revision stamped at build time.", std)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	fmt.Fprintf(std.out, "tombstone %s (revision %s, %s, %s/%s)\n", buildinfo.Version, buildinfo.Revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
