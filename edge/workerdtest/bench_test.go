package workerdtest

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"mote/engine"
)

// BenchmarkColdStart: a new workerd process per iteration; cold-ms is from
// starting the process to the first completion's first byte (process
// start, isolate, Go instance, model load, 16 tokens), ttfb2-ms the second
// request's, on a resident model.
func BenchmarkColdStart(b *testing.B) {
	for _, v := range []string{"edge", "edge-nosimd"} {
		b.Run(v, func(b *testing.B) {
			dir := dist(b, v)
			var cold, listen, second time.Duration
			for i := 0; i < b.N; i++ {
				w := startWorker(b, dir)
				_, r1 := w.complete(b, `{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0}`)
				cold += time.Since(w.started) - r1.total + r1.ttfb
				listen += w.ready
				_, r2 := w.complete(b, `{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0}`)
				second += r2.ttfb
				w.cmd.Process.Kill()
				w.cmd.Wait()
			}
			n := float64(b.N)
			b.ReportMetric(float64(cold.Milliseconds())/n, "cold-ms")
			b.ReportMetric(float64(listen.Milliseconds())/n, "listen-ms")
			b.ReportMetric(float64(second.Microseconds())/1000/n, "ttfb2-ms")
		})
	}
}

// BenchmarkStream: one stream of 252 tokens at a time on a warm isolate:
// time to the first token's event, and tokens per second of the whole
// request.
func BenchmarkStream(b *testing.B) {
	for _, v := range []string{"edge", "edge-nosimd"} {
		b.Run(v, func(b *testing.B) {
			w := startWorker(b, dist(b, v))
			body := refRequest(`"temperature": 0`, true)
			for i := 0; i < 3; i++ { // warm up: load, and let V8 tier up
				w.call(b, "POST", "/v1/completions", body)
			}
			b.ResetTimer()
			var ttft, total time.Duration
			tokens := 0
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				resp, err := client.Post(w.url+"/v1/completions", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReader(resp.Body)
				if _, err := br.ReadString('\n'); err != nil {
					b.Fatal(err)
				}
				ttft += time.Since(t0)
				rest := new(strings.Builder)
				if _, err := br.WriteTo(rest); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				total += time.Since(t0)
				tokens += strings.Count(rest.String(), "data: ") // 251 more tokens, the finishing chunk, [DONE]
			}
			b.ReportMetric(float64(ttft.Microseconds())/1000/float64(b.N), "ttft-ms")
			b.ReportMetric(float64(252*b.N)/total.Seconds(), "tok/s")
			if tokens != 253*b.N {
				b.Fatalf("%d events, want %d", tokens, 253*b.N)
			}
		})
	}
}

// BenchmarkLoad: 8 clients on loopback, each sending completions of 32
// tokens one after another, to one workerd (one isolate): requests/s.
func BenchmarkLoad(b *testing.B) {
	w := startWorker(b, dist(b, "edge"))
	const clients = 8
	body := `{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0.8, "seed": 3}`
	w.complete(b, body)
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	next := make(chan int, b.N)
	for i := 0; i < b.N; i++ {
		next <- i
	}
	close(next)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				resp, err := client.Post(w.url+"/v1/completions", "application/json", strings.NewReader(body))
				if err == nil {
					if _, err = io.Copy(io.Discard, resp.Body); err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					resp.Body.Close()
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if len(errs) > 0 {
		b.Fatalf("%d requests failed: %v", len(errs), errs[0])
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(32*b.N)/el.Seconds(), "tok/s")
}

// BenchmarkEmbed: embeddings per second of one isolate, one request at a
// time on a warm encoder, for the 12-token sentence and the 128-token
// paragraph of engine's benchmarks (docs/EMBED.md's speed table), as
// emb/s and ms/token of the whole request (HTTP and JSON included).
func BenchmarkEmbed(b *testing.B) {
	for _, v := range []string{"edge", "edge-nosimd"} {
		for _, tc := range []struct {
			name, text string
			tokens     int
		}{{"sentence", engine.BenchSentence, 12}, {"paragraph", engine.BenchParagraph, 128}} {
			b.Run(v+"/"+tc.name, func(b *testing.B) {
				w := startWorker(b, dist(b, v))
				body := fmt.Sprintf(`{"input": %q}`, tc.text)
				for i := 0; i < 3; i++ { // warm up: load, and let V8 tier up
					if e, _ := w.embed(b, body); e.Usage.TotalTokens != tc.tokens {
						b.Fatalf("%d tokens, want %d", e.Usage.TotalTokens, tc.tokens)
					}
				}
				b.ResetTimer()
				t0 := time.Now()
				for i := 0; i < b.N; i++ {
					w.embed(b, body)
				}
				el := time.Since(t0)
				b.ReportMetric(float64(b.N)/el.Seconds(), "emb/s")
				b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N*tc.tokens), "ms/token")
			})
		}
	}
}
