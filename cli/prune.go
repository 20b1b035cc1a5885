package cli

import (
	"fmt"
	"io"
)

func cmdPrune(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("prune: not built yet")
}
