// Package cli is the `mote` command: argument parsing, output and exit codes
// around core and models. The native binary (cmd/mote) and the WASI command
// (GOOS=wasip1 build of the same main) run this same code.
package cli
