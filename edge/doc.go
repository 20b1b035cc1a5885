// Package edge is mote's Cloudflare Worker: OpenAI-style completion and
// embeddings APIs (POST /v1/completions, POST /v1/embeddings, GET
// /v1/models, GET /healthz) as a plain http.Handler over mote/engine
// (Engine for language models, Embedder for sentence encoders), tested
// natively with httptest. The js entry
// point (edge/worker) serves it through github.com/syumai/workers, and the
// glue in edge/glue keeps one Go instance, and so the loaded model, resident
// per isolate. edge/bundle writes the deployable folder (dist/edge).
//
// It imports the standard library, mote/core and mote/engine only.
//
// Why the handler starts no goroutine and writes one event per token: in
// workerd all Go work must run inside the JavaScript call of the request it
// belongs to. Go funnels its timers into one setTimeout owned by whichever
// request last called in, and workerd cancels the others as hung, so a
// goroutine that produces tokens on its own schedule starves concurrent
// streams (measured: 1-2 of 16 completed; ../shared/design/TOOLCHAIN.md).
// syumai/workers turns each Write into one chunk of the response's
// ReadableStream and reads it in the stream's pull(): the stream loop below
// computes token n+1 only after event n was pulled, inside that pull, with
// no timer. Pull streaming, measured in workerd: every stream completes.
//
// Why a work budget counted in multiply-adds and not a clock: on Cloudflare
// Date.now() advances only across I/O, not during CPU work, so a time limit
// cannot be read from inside a request. Counting positions times the
// model's parameters is deterministic and proportional to CPU time.
//
// Semantics: the text of a completion is what `mote run` prints after the
// prompt's own pieces (llama2.c's generate loop), so prompt + text equals
// mote run's output for -n (prompt tokens + max_tokens), minus its final
// newline, when the prompt's pieces print as the prompt (true for ordinary
// text). finish_reason is "stop" when the model ends the text (BOS) or a
// stop string matched, "length" at max_tokens, the context or the budget.
//
// Embeddings: a request is validated whole (each text's bytes and tokens,
// the total against MaxEmbedTokens, which is the embeddings' work budget)
// before any text is encoded, then encoded in the handler's own call, like
// a completion's tokens. The encoder is larger than the Worker upload may
// be, so the glue fetches it from static assets on the first embeddings
// request and hands it to Server.LoadEncoder; it stays resident, quantized.
package edge
