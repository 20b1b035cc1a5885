package cli

import (
	"fmt"
	"io"
)

func cmdConvert(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("convert: not built yet")
}

func cmdInfo(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("info: not built yet")
}
