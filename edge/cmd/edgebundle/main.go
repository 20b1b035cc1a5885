// Command edgebundle writes mote's Worker folder (dist/edge) with
// edge/bundle and prints its sizes. build.sh runs it; see docs/EDGE.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"mote/edge/bundle"
)

func main() {
	var o bundle.Options
	var vars string
	var limitGzip int64
	flag.StringVar(&o.Out, "o", "dist/edge", "output folder")
	flag.StringVar(&o.Glue, "glue", "edge/glue/worker.mjs", "the glue module")
	flag.StringVar(&o.WasmExec, "wasm-exec", "", "Go's wasm_exec.js")
	flag.StringVar(&o.App, "app", "", "the worker wasm (GOOS=js build of ./edge/worker)")
	flag.StringVar(&o.Kernels, "kernels", "", "the SIMD kernel module, for a -tags mote_simd app")
	flag.StringVar(&o.Model, "model", "", "the model file")
	flag.StringVar(&o.Tokenizer, "tokenizer", "", "a llama2.c tokenizer .bin, for models that carry none")
	flag.StringVar(&o.ModelName, "name", "", "the model's served name (default: the file's base name)")
	flag.StringVar(&o.Source, "source", bundle.SourceBundle, "where the worker gets the model: bundle, assets or r2")
	flag.Int64Var(&o.PartBytes, "part-bytes", bundle.MaxAssetBytes, "static asset part size")
	flag.StringVar(&o.Encoder, "encoder", "", "a sentence encoder for POST /v1/embeddings (always static assets)")
	flag.StringVar(&o.EncoderName, "encoder-name", "", "the encoder's served name (default: the file's base name)")
	flag.StringVar(&o.R2Bucket, "r2-bucket", "", "R2 bucket name (source r2)")
	flag.IntVar(&o.Port, "port", 8787, "workerd's port on 127.0.0.1")
	flag.StringVar(&vars, "vars", "", "extra Worker variables, NAME=VALUE,...")
	flag.Int64Var(&limitGzip, "max-gzip", 0, "fail when the upload's gzip size is larger (0: no check)")
	flag.Parse()
	if vars != "" {
		o.Vars = map[string]string{}
		for _, kv := range strings.Split(vars, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(os.Stderr, "edgebundle: -vars: %q is not NAME=VALUE\n", kv)
				os.Exit(2)
			}
			o.Vars[k] = v
		}
	}
	rep, err := bundle.Write(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgebundle:", err)
		os.Exit(1)
	}
	for _, f := range rep.Files {
		where := "upload"
		if !f.Upload {
			where = "config/asset"
		}
		fmt.Printf("    %-34s %9d bytes raw, %9d gzip  (%s)\n", f.Path, f.Bytes, f.GzipBytes, where)
	}
	fmt.Printf("    Worker upload: %d bytes raw (%.2f MiB), %d gzip (%.2f MiB; free plan limit 3 MiB)\n",
		rep.UploadBytes, float64(rep.UploadBytes)/(1<<20), rep.UploadGzipBytes, float64(rep.UploadGzipBytes)/(1<<20))
	if rep.AssetBytes > 0 {
		fmt.Printf("    static assets: %d bytes (manifest %s)\n", rep.AssetBytes, rep.ModelManifest)
	}
	if rep.EncoderManifest != "" {
		fmt.Printf("    encoder: static assets (manifest %s)\n", rep.EncoderManifest)
	}
	if limitGzip > 0 && rep.UploadGzipBytes > limitGzip {
		fmt.Fprintf(os.Stderr, "edgebundle: the upload is %d bytes gzip, more than %d\n", rep.UploadGzipBytes, limitGzip)
		os.Exit(1)
	}
}
