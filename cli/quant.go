package cli

import (
	"fmt"
	"io"
)

func cmdQuant(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("quant: not built yet")
}
