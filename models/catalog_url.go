//go:build !wasm

package models

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// (Native builds only: the wasm builds do not download, and net/url would
// add to every page's download.)

// EntryForURL describes a file given by URL: a catalogue entry when the URL
// is one of them, else an unverified entry named after the URL's last path
// element.
func EntryForURL(raw string) (CatalogEntry, error) {
	for _, e := range Catalog {
		if e.URL == raw {
			return e, nil
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return CatalogEntry{}, fmt.Errorf("%q is neither a catalogue name nor an http(s) URL", raw)
	}
	file := path.Base(u.Path)
	if file == "" || file == "/" || file == "." || file == ".." || strings.ContainsAny(file, `\:`) {
		return CatalogEntry{}, fmt.Errorf("cannot name a file after the URL %q (its path has no file name)", raw)
	}
	return CatalogEntry{Name: file, File: file, URL: raw}, nil
}
