//go:build !wasm

package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mote/models"
)

// blobServer serves one file at /model.bin with Range support (the
// standard library's ServeContent: 206 for a range, 416 past the end), and
// can cut the next transfer short or change the content.
type blobServer struct {
	*httptest.Server
	mu       sync.Mutex
	data     []byte
	cutAt    int      // >0: the next full-body answer stops after this many bytes
	ranges   []string // Range headers seen, "" for none
	requests int
}

func newBlobServer(t *testing.T, data []byte) *blobServer {
	s := &blobServer{data: data}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		data, cut := s.data, s.cutAt
		s.cutAt = 0
		s.mu.Unlock()
		if r.URL.Path != "/model.bin" {
			http.NotFound(w, r)
			return
		}
		if cut > 0 {
			// promise the whole file, send part of it, drop the connection
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:cut])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		http.ServeContent(w, r, "model.bin", time.Unix(0, 0), bytes.NewReader(data))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *blobServer) set(data []byte) {
	s.mu.Lock()
	s.data = data
	s.mu.Unlock()
}

func testBlob(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readState(t *testing.T, dir string) map[string]pullRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pullStateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st pullState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Files
}

// oneLineError checks a failed run: exit 1, nothing on stdout, and one
// "mote: " line on stderr after any progress output.
func oneLineError(t *testing.T, out, errs string, code int, want ...string) {
	t.Helper()
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	i := strings.LastIndex(errs, "mote: ")
	if i < 0 || strings.Count(errs[i:], "\n") != 1 || !strings.HasSuffix(errs, "\n") {
		t.Fatalf("not one error line: %q", errs)
	}
	for _, w := range want {
		if !strings.Contains(errs[i:], w) {
			t.Fatalf("error %q does not say %q", errs[i:], w)
		}
	}
}

func TestPullDownloadRecordsAndVerifies(t *testing.T) {
	data := testBlob(1, 300_000)
	srv := newBlobServer(t, data)
	dir := t.TempDir()
	url := srv.URL + "/model.bin"
	out, errs, code := runCLI(t, "pull", url, "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got, err := os.ReadFile(filepath.Join(dir, "model.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.bin.part")); !os.IsNotExist(err) {
		t.Fatalf(".part left behind: %v", err)
	}
	if !strings.Contains(out, hexSHA(data)) || !strings.Contains(out, "unverified") {
		t.Fatalf("stdout %q", out)
	}
	if !strings.Contains(errs, "model.bin") || !strings.Contains(errs, "100%") || !strings.Contains(errs, "300 kB") {
		t.Fatalf("no progress bar on stderr: %q", errs)
	}
	rec, ok := readState(t, dir)[url]
	if !ok || rec.SHA256 != hexSHA(data) || rec.Bytes != int64(len(data)) || rec.File != "model.bin" {
		t.Fatalf("state record %+v", rec)
	}

	// again: already there and checked against the record, no transfer
	n := srv.requests
	out, errs, code = runCLI(t, "pull", url, "--dir", dir)
	if code != 0 || !strings.Contains(out, "already present") || !strings.Contains(out, "recorded") || srv.requests != n {
		t.Fatalf("second pull: exit %d, %q %q, %d requests", code, out, errs, srv.requests-n)
	}

	// the server now serves other bytes: the recorded digest catches it and
	// nothing corrupt is left
	os.Remove(filepath.Join(dir, "model.bin"))
	srv.set(testBlob(2, 300_000))
	out, errs, code = runCLI(t, "pull", url, "--dir", dir)
	oneLineError(t, out, errs, code, "sha256 mismatch", hexSHA(data), "deleted")
	for _, f := range []string{"model.bin", "model.bin.part"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Fatalf("%s left after a mismatch", f)
		}
	}
	// the record still holds the first digest
	if rec := readState(t, dir)[url]; rec.SHA256 != hexSHA(data) {
		t.Fatalf("record changed to %s", rec.SHA256)
	}
	// a file in place that does not match is reported, not overwritten
	os.WriteFile(filepath.Join(dir, "model.bin"), []byte("junk"), 0o644)
	out, errs, code = runCLI(t, "pull", url, "--dir", dir)
	oneLineError(t, out, errs, code, "exists but its sha256")
}

func TestPullResume(t *testing.T) {
	data := testBlob(3, 1<<20)
	srv := newBlobServer(t, data)
	dir := t.TempDir()
	url := srv.URL + "/model.bin"
	srv.cutAt = 400_000
	out, errs, code := runCLI(t, "pull", url, "--dir", dir)
	oneLineError(t, out, errs, code, "interrupted at 400000 of 1048576", "again to resume")
	part := filepath.Join(dir, "model.bin.part")
	if fi, err := os.Stat(part); err != nil || fi.Size() != 400_000 {
		t.Fatalf(".part after the cut: %v", err)
	}
	out, errs, code = runCLI(t, "pull", url, "--dir", dir)
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, errs)
	}
	if last := srv.ranges[len(srv.ranges)-1]; last != "bytes=400000-" {
		t.Fatalf("resume asked for %q", last)
	}
	if !strings.Contains(errs, "resuming model.bin at 400000 of 1048576") {
		t.Fatalf("stderr %q", errs)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "model.bin"))
	if !bytes.Equal(got, data) || readState(t, dir)[url].SHA256 != hexSHA(data) {
		t.Fatal("resumed file or its record is wrong")
	}
	if !strings.Contains(out, hexSHA(data)) {
		t.Fatalf("stdout %q", out)
	}

	// a .part that is already complete: the server answers 416 and the part
	// is checked and kept
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "model.bin.part"), data, 0o644)
	_, errs, code = runCLI(t, "pull", url, "--dir", dir2)
	got, _ = os.ReadFile(filepath.Join(dir2, "model.bin"))
	if code != 0 || !bytes.Equal(got, data) {
		t.Fatalf("complete .part: exit %d: %s", code, errs)
	}
}

// withCatalog adds entries to the catalogue for one test.
func withCatalog(t *testing.T, es ...models.CatalogEntry) {
	old := models.Catalog
	models.Catalog = append(append([]models.CatalogEntry(nil), old...), es...)
	t.Cleanup(func() { models.Catalog = old })
}

func TestPullCatalogDigest(t *testing.T) {
	data := testBlob(4, 50_000)
	srv := newBlobServer(t, data)
	withCatalog(t,
		models.CatalogEntry{Name: "test-good", File: "good.bin", URL: srv.URL + "/model.bin", SHA256: hexSHA(data)},
		models.CatalogEntry{Name: "test-bad", File: "bad.bin", URL: srv.URL + "/model.bin", SHA256: hexSHA([]byte("other"))},
	)
	dir := t.TempDir()
	out, errs, code := runCLI(t, "pull", "test-good", "--dir", dir)
	if code != 0 || !strings.Contains(out, "verified against the catalogue's sha256") {
		t.Fatalf("exit %d: %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, pullStateFile)); !os.IsNotExist(err) {
		t.Fatal("a catalogue digest was recorded in the state file")
	}
	out, errs, code = runCLI(t, "pull", "test-bad", "--dir", dir)
	oneLineError(t, out, errs, code, "sha256 mismatch", "catalogue")
	for _, f := range []string{"bad.bin", "bad.bin.part"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Fatalf("%s left after a mismatch", f)
		}
	}
}

func TestPullErrors(t *testing.T) {
	srv := newBlobServer(t, []byte("x"))
	dir := t.TempDir()

	out, errs, code := runCLI(t, "pull", srv.URL+"/missing.bin", "--dir", dir)
	oneLineError(t, out, errs, code, "404 Not Found")

	// a port nobody listens on
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	out, errs, code = runCLI(t, "pull", "http://"+addr+"/stories15M.bin", "--dir", dir)
	oneLineError(t, out, errs, code, "cannot reach "+addr, "offline", "refused")

	out, errs, code = runCLI(t, "pull", "no-such-model", "--dir", dir)
	oneLineError(t, out, errs, code, "unknown model", "stories15M")

	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("failed pulls left %d files", len(entries))
	}

	os.WriteFile(filepath.Join(dir, pullStateFile), []byte("{not json"), 0o644)
	out, errs, code = runCLI(t, "pull", srv.URL+"/model.bin", "--dir", dir)
	oneLineError(t, out, errs, code, "corrupt")

	for _, args := range [][]string{{"pull"}, {"pull", "a", "b"}, {"pull", "--frob"}, {"pull", "x", "--dir"}} {
		if _, _, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestPullList(t *testing.T) {
	out, _, code := runCLI(t, "pull", "--list")
	if code != 0 {
		t.Fatal(code)
	}
	for _, e := range models.Catalog {
		if !strings.Contains(out, e.Name) || !strings.Contains(out, e.URL) {
			t.Fatalf("--list lacks %s", e.Name)
		}
	}
	if !strings.Contains(out, "unverified") {
		t.Fatal("--list does not say which entries are unverified")
	}
}
