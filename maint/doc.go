// Package maint holds privileged jobs shared by the commands and the trash
// console: a restore, run in one transaction on a direct, privileged
// connection. It builds its statements with package rewrite, so that a
// restore here and one through the proxy cannot disagree on what a
// deletion took with it.
//
// It imports rewrite, policy and pgx; never internal/config.
package maint
