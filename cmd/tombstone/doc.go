// Command tombstone is the Tombstone proxy's command line: serve, rewrite
// (dry run), check-config, the schema commands doctor, migrate, restore
// and purge, hash-password (for the trash console's users), and version.
//
// It holds flags, configuration loading, signal handling and wiring only;
// the work is done by internal/server (serve), rewrite and policy (dry
// run), maint (restore), schematool (doctor, migrate), purge, and
// internal/config (validation).
//
// Exit codes: 0 success; 1 runtime error (a listener cannot be opened or
// fails, stdin cannot be read); 2 usage or configuration error (unknown
// command or flag, missing --config, invalid configuration file).
package main
