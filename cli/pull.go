//go:build !wasm

package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"mote/models"
)

// mote pull NAME|URL [--dir DIR] [--list]
//
// Downloads into DIR (default $MOTE_CACHE, else the user cache folder's
// mote/), through NAME.part so that an interrupted transfer resumes with an
// HTTP Range request. A catalogue entry with a digest is checked against it;
// for any other file the first complete download's sha256 is recorded in
// DIR/catalog-state.json and every later download of that URL is checked
// against the record. A file that fails its check is deleted.

type pullOpts struct {
	target string
	dir    string
	list   bool
}

func parsePull(args []string) (pullOpts, error) {
	var o pullOpts
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case a == "--list":
			o.list = true
		case name == "--dir":
			if !hasVal {
				if i+1 >= len(args) {
					return o, fmt.Errorf("%w: --dir needs a folder", errUsage)
				}
				i++
				val = args[i]
			}
			o.dir = val
		case strings.HasPrefix(a, "-"):
			return o, fmt.Errorf("%w: unknown flag %s", errUsage, a)
		case o.target != "":
			return o, fmt.Errorf("%w: pull takes one NAME or URL, got %q and %q", errUsage, o.target, a)
		default:
			o.target = a
		}
	}
	if o.target == "" && !o.list {
		return o, fmt.Errorf("%w: pull needs a NAME or URL (mote pull --list shows the names)", errUsage)
	}
	return o, nil
}

// pullDir is where downloads go when --dir is not given.
func pullDir() (string, error) {
	if d := os.Getenv("MOTE_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no download folder: %v; give one with --dir", err)
	}
	return filepath.Join(d, "mote"), nil
}

func cmdPull(args []string, stdout, stderr io.Writer) error {
	o, err := parsePull(args)
	if err != nil {
		return err
	}
	if o.list {
		printCatalog(stdout)
		if o.target == "" {
			return nil
		}
	}
	if o.dir == "" {
		if o.dir, err = pullDir(); err != nil {
			return err
		}
	}
	e, ok := models.LookupCatalog(o.target)
	if !ok {
		if !strings.Contains(o.target, "://") {
			return fmt.Errorf("pull: unknown model %q; known: %s (or give a URL)", o.target, strings.Join(models.CatalogNames(), ", "))
		}
		if e, err = models.EntryForURL(o.target); err != nil {
			return fmt.Errorf("pull: %v", err)
		}
	}
	p := &puller{dir: o.dir, client: pullClient(), log: stderr, progress: barProgress(stderr)}
	res, err := p.pull(context.Background(), e)
	if err != nil {
		return fmt.Errorf("pull %s: %w", e.Name, err)
	}
	fmt.Fprintf(stdout, "%s\t%d bytes\tsha256 %s\t%s\n", res.path, res.bytes, res.sum, res.check)
	if e.Tokenizer != "" {
		fmt.Fprintf(stderr, "note: %s carries no tokenizer; get it with: mote pull %s\n", e.Name, e.Tokenizer)
	}
	return nil
}

func printCatalog(w io.Writer) {
	for _, e := range models.Catalog {
		size := "size unknown"
		switch {
		case e.Size > 0 && e.SizeExact:
			size = fmt.Sprintf("%d bytes", e.Size)
		case e.Size >= 1e6:
			size = fmt.Sprintf("~%.1f MB", float64(e.Size)/1e6)
		case e.Size > 0:
			size = fmt.Sprintf("~%.0f kB", float64(e.Size)/1e3)
		}
		check := "unverified (first download's sha256 is recorded)"
		if e.Verified() {
			check = "sha256 " + e.SHA256
		}
		fmt.Fprintf(w, "%-22s %-14s %s\n%22s %s\n%22s %s\n", e.Name, size, e.URL, "", e.Note, "", check)
	}
}

// pullClient bounds connecting and waiting for headers, never the transfer.
func pullClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}}
}

// barProgress draws a progress bar on w for each transfer.
func barProgress(w io.Writer) func(file string, have, total int64) io.WriteCloser {
	return func(file string, have, total int64) io.WriteCloser {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(file),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
		bar.Set64(have)
		return bar
	}
}

// puller downloads catalogue entries into dir.
type puller struct {
	dir      string
	client   *http.Client
	log      io.Writer
	progress func(file string, have, total int64) io.WriteCloser // nil: no progress
}

type pullResult struct {
	path, sum, check string
	bytes            int64
}

// pullState is DIR/catalog-state.json: the digests this folder has seen,
// by URL.
type pullState struct {
	Files map[string]pullRecord `json:"files"`
}

type pullRecord struct {
	File     string    `json:"file"`
	Bytes    int64     `json:"bytes"`
	SHA256   string    `json:"sha256"`
	Recorded time.Time `json:"recorded"`
}

const (
	pullStateFile = "catalog-state.json"
	maxStateBytes = 4 << 20
)

func (p *puller) loadState() (*pullState, error) {
	st := &pullState{Files: map[string]pullRecord{}}
	path := filepath.Join(p.dir, pullStateFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a catalogue state file", path, maxStateBytes)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s is corrupt (%v); delete it to forget the recorded digests", path, err)
	}
	if st.Files == nil {
		st.Files = map[string]pullRecord{}
	}
	return st, nil
}

// saveState writes the state through a temporary file and a rename, so a
// crash never leaves half a file.
func (p *puller) saveState(st *pullState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(p.dir, pullStateFile+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(p.dir, pullStateFile))
}

// pull makes sure e's file is in the folder and checked, downloading or
// resuming as needed.
func (p *puller) pull(ctx context.Context, e models.CatalogEntry) (*pullResult, error) {
	if e.File == "" || e.File != filepath.Base(e.File) || e.File == "." || e.File == ".." {
		return nil, fmt.Errorf("bad file name %q", e.File)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	st, err := p.loadState()
	if err != nil {
		return nil, err
	}
	want, source := strings.ToLower(e.SHA256), "the catalogue's sha256"
	if rec, ok := st.Files[e.URL]; ok && want == "" {
		want, source = rec.SHA256, fmt.Sprintf("the sha256 recorded at the first download (%s)", rec.Recorded.Format(time.DateOnly))
	}
	final := filepath.Join(p.dir, e.File)
	part := final + ".part"

	// already there and checked?
	if want != "" {
		if sum, n, err := fileSHA256(final); err == nil {
			if sum != want {
				return nil, fmt.Errorf("%s exists but its sha256 %s differs from %s %s; delete it to download again", final, sum, source, want)
			}
			return &pullResult{path: final, sum: sum, bytes: n, check: "already present, verified against " + source}, nil
		}
	}

	sum, n, err := p.fetch(ctx, e, part)
	if err != nil {
		return nil, err
	}
	if want != "" && sum != want {
		os.Remove(part)
		return nil, fmt.Errorf("sha256 mismatch: the download has %s, %s is %s; the download was deleted", sum, source, want)
	}
	if err := os.Rename(part, final); err != nil {
		return nil, err
	}
	res := &pullResult{path: final, sum: sum, bytes: n, check: "verified against " + source}
	if want == "" {
		st.Files[e.URL] = pullRecord{File: e.File, Bytes: n, SHA256: sum, Recorded: time.Now().UTC()}
		if err := p.saveState(st); err != nil {
			return nil, fmt.Errorf("downloaded %s but could not record its sha256: %v", final, err)
		}
		res.check = "unverified: no published sha256; recorded in " + filepath.Join(p.dir, pullStateFile) + " and checked from now on"
	}
	return res, nil
}

// fileSHA256 hashes a whole file.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// fetch completes part from e.URL, resuming after the bytes it already
// holds, and returns the sha256 and length of the whole file.
func (p *puller) fetch(ctx context.Context, e models.CatalogEntry, part string) (string, int64, error) {
	for attempt := 0; ; attempt++ {
		have := int64(0)
		if fi, err := os.Stat(part); err == nil {
			have = fi.Size()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL, nil)
		if err != nil {
			return "", 0, err
		}
		if have > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return "", 0, netError(e.URL, err)
		}
		switch {
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
			resp.Body.Close()
			// complete already, or a stale part of another version
			if total, ok := rangeTotal(resp.Header.Get("Content-Range")); ok && total == have {
				sum, n, err := fileSHA256(part)
				return sum, n, err
			}
			if attempt > 0 {
				return "", 0, fmt.Errorf("GET %s: %s for a partial file of %d bytes", e.URL, resp.Status, have)
			}
			os.Remove(part)
			continue
		case resp.StatusCode == http.StatusPartialContent && have > 0:
			start, total, ok := contentRange(resp.Header.Get("Content-Range"))
			if !ok || start != have {
				resp.Body.Close()
				if attempt > 0 {
					return "", 0, fmt.Errorf("GET %s: the server resumed at the wrong place (%q)", e.URL, resp.Header.Get("Content-Range"))
				}
				os.Remove(part)
				continue
			}
			fmt.Fprintf(p.log, "resuming %s at %d of %d bytes\n", e.File, have, total)
			return p.receive(resp, e, part, have, total)
		case resp.StatusCode == http.StatusOK:
			total := resp.ContentLength // -1 when unknown
			return p.receive(resp, e, part, 0, total)
		default:
			resp.Body.Close()
			return "", 0, fmt.Errorf("GET %s: server answered %s", e.URL, resp.Status)
		}
	}
}

// receive appends the response body to part (truncating it first when
// have is 0) and hashes the whole file.
func (p *puller) receive(resp *http.Response, e models.CatalogEntry, part string, have, total int64) (string, int64, error) {
	defer resp.Body.Close()
	h := sha256.New()
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if have > 0 {
		if err := hashPrefix(h, part, have); err != nil {
			return "", 0, err
		}
		flags = os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return "", 0, err
	}
	var w io.Writer = io.MultiWriter(f, h)
	var bar io.WriteCloser
	if p.progress != nil {
		bar = p.progress(e.File, have, total)
		w = io.MultiWriter(f, h, bar)
	}
	n, copyErr := io.Copy(w, resp.Body)
	closeErr := f.Close()
	if bar != nil {
		bar.Close()
	}
	got := have + n
	if copyErr != nil || (total >= 0 && got != total) {
		why := "the connection ended early"
		if copyErr != nil {
			why = copyErr.Error()
		}
		return "", 0, fmt.Errorf("transfer interrupted at %d of %s bytes (%s); %s holds them: run the same command again to resume",
			got, sizeText(total), why, part)
	}
	if closeErr != nil {
		return "", 0, closeErr
	}
	return hex.EncodeToString(h.Sum(nil)), got, nil
}

func sizeText(n int64) string {
	if n < 0 {
		return "?"
	}
	return strconv.FormatInt(n, 10)
}

// hashPrefix feeds the first n bytes of a file to h.
func hashPrefix(h hash.Hash, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(h, f, n); err != nil {
		return fmt.Errorf("reading %s to resume: %v", path, err)
	}
	return nil
}

// contentRange parses "bytes START-END/TOTAL" (TOTAL may be *, then -1).
func contentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
			return 0, 0, false
		}
	}
	return start, total, true
}

// rangeTotal parses the "bytes */TOTAL" of a 416 answer.
func rangeTotal(s string) (int64, bool) {
	rest, found := strings.CutPrefix(s, "bytes */")
	if !found {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil && n >= 0
}

// netError turns a failed request into one line that says what to check.
func netError(raw string, err error) error {
	host := raw
	if u, perr := url.Parse(raw); perr == nil {
		host = u.Host
	}
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns):
		return fmt.Errorf("cannot resolve %s (offline?): %v", host, dns)
	case errors.As(err, &op):
		return fmt.Errorf("cannot reach %s (offline, or the server is down?): %v", host, op)
	}
	return fmt.Errorf("GET %s: %v", raw, err)
}
