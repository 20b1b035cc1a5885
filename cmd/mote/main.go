// Command mote runs, converts and inspects small language models. The same
// main builds natively and as a WASI command (GOOS=wasip1).
package main

import (
	"os"

	"mote/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
