// Command serve is the development web server behind `./build.sh serve`: it
// serves one folder (dist/web) as static files on a loopback address, with
// the MIME types browsers insist on for WebAssembly and ES modules, and no
// caching, so that a rebuild shows on reload.
//
// Why a Go program and not python3 -m http.server: Go is the one toolchain
// every mote machine has, Python's server guesses types from the host's
// mime.types (application/wasm is missing on some), and this one can grow
// the headers the web build will need (COOP/COEP for threads, say).
//
// It is not a production server: static hosting of dist/web is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"
)

func main() {
	dir := flag.String("dir", "dist/web", "folder to serve")
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	if err := run(*dir, *addr); err != nil {
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, addr string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(dir), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("serving %s at http://%s/ (Ctrl-C stops)\n", dir, ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// types are set explicitly rather than taken from the host's mime.types.
var types = map[string]string{
	".wasm": "application/wasm",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".json": "application/json",
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".mote": "application/octet-stream",
	".gguf": "application/octet-stream",
	".bin":  "application/octet-stream",
}

func init() {
	for ext, t := range types {
		mime.AddExtensionType(ext, t)
	}
}

// handler serves dir with caching off.
func handler(dir string) http.Handler {
	fs := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fs.ServeHTTP(w, r)
	})
}
