package cli

import (
	"fmt"
	"io"
)

func cmdEval(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("eval: not built yet")
}
