package cli

import (
	"fmt"
	"io"
)

func cmdPull(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("pull: not built yet")
}
