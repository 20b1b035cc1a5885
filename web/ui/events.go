package ui

import "github.com/vugu/vugu"

// fileInput hands #model-file's files to OnFiles, then clears the input so
// that choosing the same file again loads it again.
func (c *Root) fileInput(ev vugu.DOMEvent) {
	t := ev.JSEventTarget()
	files := t.Get("files")
	c.OnFiles(files, files.Length())
	t.Set("value", "")
}
