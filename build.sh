#!/usr/bin/env bash
# build.sh: the one entry point for building, testing, serving and
# benchmarking mote. Run `./build.sh help` for the commands.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD

# The default model: stories260K as GGUF, shipped in a Go module's testdata
# (fetched through the Go module proxy, pinned by version and sha256).
GGUF_MODULE=github.com/mutablelogic/go-llama@v0.0.11
GGUF_FILE=testdata/stories260K.gguf
GGUF_SHA256=270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d
DEFAULT_MODEL=dist/models/stories260K.mote

usage() {
	cat <<'EOF'
usage: ./build.sh [COMMAND]

  build (default)  wasm/simd/kernels.wasm  re-assembled from kernels.wat (needs wabt)
                   bin/mote            native command
                   dist/mote.wasm      the same command for WASI (GOOS=wasip1)
                   dist/mote-simd.wasm the same with the SIMD kernels (dist/kernels.wasm)
                   dist/mote-js.wasm   the js build (GOOS=js), with dist/mote.js
                                       (its JavaScript API) and dist/wasm_exec.js
                   dist/models/stories260K.mote
                                       the default model, converted from the
                                       GGUF in github.com/mutablelogic/go-llama
                   dist/web/           the static web page (see web)
  test             gofmt check, go vet (native, js, wasip1), builds the binaries,
                   npm ci when node_modules is stale, then
                   go test -timeout 30m ./... (tests use dist/ via MOTE_DIST),
                   then the browser tests of dist/web in headless chromium
                   (node --test web/test/*.test.mjs)
  bench [REGEXP [PACKAGES...]]
                   builds the binaries, then
                   go test -run '^$' -bench REGEXP -benchtime $BENCHTIME PACKAGES
                   (defaults: all benchmarks, BENCHTIME=300ms, ./...); decode
                   benchmarks report tok/s, e.g. ./build.sh bench Decode ./wasm/...;
                   then the browser benchmarks of dist/web (web/test/bench.mjs:
                   startup cold and cached, bytes before the first token,
                   tok/s in headless chromium; MOTE_BENCH_RUNS=3)
                   with no REGEXP, also the decode matrix (mote bench --matrix
                   BENCH_SHAPES x BENCH_TYPES x native,wasip1, default
                   260K,15M x f32,q8,q4) into dist/bench-matrix.md
  serve [PORT]     serves dist/web on http://127.0.0.1:PORT/ (default 8080)
  model            only the default model step
  web              the binaries, then only dist/web (the static page:
                   index.html, mote.wasm with the UI and the engine,
                   kernels.wasm, scripts, models/ and models.json)
  edge [PORT]      runs dist/edge, the Cloudflare Worker, in workerd from npm
                   (installed with npm ci when missing) on http://127.0.0.1:PORT/
                   (default 8787, or $MOTE_EDGE_PORT), in the foreground;
                   dist/edge is rebuilt first only when it is stale.
                   build, test and bench also write dist/edge (SIMD, the model
                   bundled: wrangler.jsonc for npx wrangler deploy, workerd.capnp)
                   and dist/edge-nosimd; MOTE_EDGE_MODEL, MOTE_EDGE_TOKENIZER,
                   MOTE_EDGE_SOURCE (bundle|assets|r2) pick another model
                   (docs/EDGE.md)
  clean            removes bin/, dist/ and .cache/
  help             this text

Steps whose outputs are up to date are skipped (go build itself relinks
only when something changed).
EOF
}

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
	printf 'build.sh: error: %s\n' "$*" >&2
	exit 1
}
# run prints a command, runs it, and stops the build with a message if it fails.
run() {
	printf '    $'
	printf ' %q' "$@"
	printf '\n'
	"$@" || die "command failed (exit $?): $*"
}

need_go() {
	command -v go >/dev/null || die "go not found on PATH (the Go toolchain lives in /usr/local/go/bin)"
	# Honour a toolchain line in go.mod even where GOTOOLCHAIN=local is set.
	local tc
	tc=$(sed -n 's/^toolchain[[:space:]]\{1,\}\(go[0-9.]*\)[[:space:]]*$/\1/p' go.mod)
	if [[ -n $tc && -z ${GOTOOLCHAIN:-} ]]; then
		export GOTOOLCHAIN=$tc
		note "GOTOOLCHAIN=$tc (from go.mod)"
	fi
}

# size prints a file's raw and gzip -9 sizes.
size() {
	printf '    %-32s %9d bytes raw, %9d gzip\n' "$1" "$(stat -c %s "$1")" "$(gzip -9c "$1" | wc -c)"
}

# copy_if_changed copies SRC to DST unless DST already has the same bytes.
copy_if_changed() {
	if cmp -s "$1" "$2" 2>/dev/null; then
		note "$2 is up to date"
	else
		run cp "$1" "$2"
	fi
}

# build_kernels re-assembles the committed SIMD kernel module from its source
# when wabt's wat2wasm is present (SIMD is on by default in wabt 1.0.32; it
# has no --enable-simd flag any more). Without wat2wasm the committed
# kernels.wasm is used as is.
build_kernels() {
	local src=wasm/simd/kernels.wat dst=wasm/simd/kernels.wasm
	[[ -f $src ]] || return 0
	step "$dst (assembled from $src)"
	if ! command -v wat2wasm >/dev/null; then
		[[ -f $dst ]] || die "$dst is missing and wat2wasm is not installed (Debian package wabt)"
		note "wat2wasm not found (Debian package wabt): keeping the committed $dst"
		return
	fi
	local tmp
	tmp=$(mktemp)
	run wat2wasm "$src" -o "$tmp"
	copy_if_changed "$tmp" "$dst"
	rm -f "$tmp"
}

build_bins() {
	need_go
	build_kernels
	step "bin/mote (native)"
	run go build -buildvcs=false -o bin/mote ./cmd/mote
	mkdir -p dist
	step "dist/mote.wasm (WASI command: GOOS=wasip1 GOARCH=wasm, same main as bin/mote)"
	run env GOOS=wasip1 GOARCH=wasm go build -buildvcs=false -trimpath -ldflags='-s -w' -o dist/mote.wasm ./cmd/mote
	step "dist/mote-simd.wasm (the same, with the SIMD kernels of wasm/simd/kernels.wasm: mote bench --target wasip1)"
	run env GOOS=wasip1 GOARCH=wasm go build -buildvcs=false -trimpath -ldflags='-s -w' -tags mote_simd -o dist/mote-simd.wasm ./cmd/mote
	copy_if_changed wasm/simd/kernels.wasm dist/kernels.wasm
	step "dist/mote-js.wasm (GOOS=js GOARCH=wasm, ./wasm/js) with dist/mote.js and dist/wasm_exec.js"
	run env GOOS=js GOARCH=wasm go build -buildvcs=false -trimpath -ldflags='-s -w' -o dist/mote-js.wasm ./wasm/js
	copy_if_changed wasm/js/mote.js dist/mote.js
	local goroot
	goroot=$(go env GOROOT) || die "go env GOROOT failed"
	[[ -f $goroot/lib/wasm/wasm_exec.js ]] || die "$goroot/lib/wasm/wasm_exec.js not found (Go 1.24+ keeps it in lib/wasm)"
	copy_if_changed "$goroot/lib/wasm/wasm_exec.js" dist/wasm_exec.js
}

# module_file VAR FILE SHA256 sets VAR to the path of FILE inside
# $GGUF_MODULE (fetched by go mod download into the module cache, in a
# throwaway folder so that our go.mod is not touched) once its sha256 is
# checked.
module_file() {
	local -n _out=$1
	local tmp json dir sum
	tmp=$(mktemp -d)
	note "fetching $GGUF_MODULE (go mod download, in a throwaway folder)"
	json=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$GGUF_MODULE") ||
		{ rm -rf "$tmp"; die "go mod download $GGUF_MODULE failed:
$json"; }
	rm -rf "$tmp"
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p')
	[[ -n $dir ]] || die "no Dir in the output of go mod download:
$json"
	[[ -f $dir/$2 ]] || die "$2 not found in $dir"
	sum=$(sha256sum "$dir/$2" | cut -d' ' -f1)
	[[ $sum == "$3" ]] || die "$dir/$2 has sha256 $sum, want $3"
	note "verified sha256 of $dir/$2"
	_out=$dir/$2
}

build_model() {
	need_go
	step "default model $DEFAULT_MODEL"
	if [[ -s $DEFAULT_MODEL && $DEFAULT_MODEL -nt bin/mote ]]; then
		note "$DEFAULT_MODEL is newer than bin/mote: up to date"
		return
	fi
	[[ -x bin/mote ]] || die "bin/mote is missing; run ./build.sh build"
	local gguf
	module_file gguf "$GGUF_FILE" "$GGUF_SHA256"
	mkdir -p "$(dirname "$DEFAULT_MODEL")"
	local part=${DEFAULT_MODEL%.mote}.partial.mote
	rm -f "$part"
	printf '    $ %s\n' "bin/mote convert $gguf $part"
	if ! bin/mote convert "$gguf" "$part"; then
		rm -f "$part"
		die "bin/mote convert failed: the GGUF reader (models/gguf.go) or the convert command (cli/convert.go) is not working"
	fi
	run mv "$part" "$DEFAULT_MODEL"
}

# WEB_MODELS are the page's models beside the default: NAME:QUANT_TYPE, made
# from $DEFAULT_MODEL with `bin/mote quant`.
WEB_MODELS=(stories260K-q8:q8 stories260K-q4:q4)

# build_web writes dist/web/, the static page (web/): index.html and its
# scripts, mote.wasm (./wasm/js built with -tags 'mote_web mote_simd': one
# Go binary for the Vugu UI on the page and the engine in its Web Worker),
# the SIMD kernel module, wasm_exec.js, and the models with their catalogue
# models.json. Any static server can serve the folder as it is.
build_web() {
	need_go
	build_kernels
	step "web/ui/0_components_gen.go (generated from web/ui/root.vugu)"
	run go tool vugugen -s -skip-go-mod ./web/ui
	run gofmt -w web/ui/0_components_gen.go
	mkdir -p dist/web/models
	step "dist/web/mote.wasm (GOOS=js GOARCH=wasm ./wasm/js, -tags 'mote_web mote_simd')"
	run env GOOS=js GOARCH=wasm go build -buildvcs=false -trimpath -ldflags='-s -w' -tags 'mote_web mote_simd' -o dist/web/mote.wasm ./wasm/js
	step "dist/web: page, scripts, kernels"
	local f goroot
	for f in web/static/*; do
		copy_if_changed "$f" "dist/web/${f##*/}"
	done
	copy_if_changed wasm/js/mote.js dist/web/mote.js
	copy_if_changed wasm/simd/kernels.wasm dist/web/kernels.wasm
	goroot=$(go env GOROOT) || die "go env GOROOT failed"
	copy_if_changed "$goroot/lib/wasm/wasm_exec.js" dist/web/wasm_exec.js
	web_models
	step "dist/web sizes (what a visitor fetches before the first token, gzip -9)"
	local total=0 n
	for f in index.html page.js wasm_exec.js mote.js mote.wasm kernels.wasm worker.js models.json models/stories260K.mote; do
		size "dist/web/$f"
		n=$(gzip -9c "dist/web/$f" | wc -c)
		total=$((total + n))
	done
	note "total before the first token: $total bytes gzip (worker.js loads wasm_exec.js and mote.js again, from the HTTP cache)"
}

# web_models puts the default model and its quantized variants in
# dist/web/models and writes dist/web/models.json, the page's catalogue.
# URLs carry a digest of the file, so the page's Cache API never serves a
# stale model after a rebuild.
web_models() {
	build_model
	step "dist/web/models and models.json"
	copy_if_changed "$DEFAULT_MODEL" dist/web/models/stories260K.mote
	local entries=() spec name typ out
	entries+=("$(web_entry stories260K "stories260K fp32 (exact)" stories260K.mote true)")
	for spec in "${WEB_MODELS[@]}"; do
		name=${spec%%:*} typ=${spec##*:} out=dist/models/$name.mote
		if [[ ! -s $out || $DEFAULT_MODEL -nt $out || bin/mote -nt $out ]]; then
			printf '    $ %s\n' "bin/mote quant $DEFAULT_MODEL -o $out --type $typ"
			bin/mote quant "$DEFAULT_MODEL" -o "$out.partial" --type "$typ" || {
				rm -f "$out.partial"
				die "bin/mote quant --type $typ failed"
			}
			run mv "$out.partial" "$out"
		fi
		copy_if_changed "$out" "dist/web/models/$name.mote"
		entries+=("$(web_entry "$name" "stories260K $typ" "$name.mote" false)")
	done
	web_encoder
	copy_if_changed "$WEB_ENCODER" "dist/web/models/${WEB_ENCODER##*/}"
	local enc
	enc=$(web_entry all-MiniLM-L6-v2 "all-MiniLM-L6-v2 (8-bit layers, 4-bit embedding)" "${WEB_ENCODER##*/}" true)
	local IFS=,
	printf '{"models": [%s], "encoders": [%s]}\n' "${entries[*]}" "$enc" >dist/web/models.json.tmp
	mv dist/web/models.json.tmp dist/web/models.json
	note "dist/web/models.json: ${#entries[@]} models, 1 encoder"
}

# The page's sentence encoder (docs/EMBED.md, docs/WEB.md): all-MiniLM-L6-v2
# from the same Go module, quantized by `bin/mote embed quant` to 8-bit
# layers and a 4-bit token embedding (16.6 MB; the GGUF is 21 MB). Made
# once (about a minute); made again when the current bin/mote cannot read it.
ENC_GGUF_FILE=testdata/all-MiniLM-L6-v2-Q4_K_M.gguf
ENC_GGUF_SHA256=2ec4cee28a27a9c973d5f5230930d6ef6e52694bd2bc71be26a9bef5b1d755e6
ENC_TYPE=8b/uniform/g32/f16,emb=4b/nl/g16/log8
WEB_ENCODER=dist/models/all-MiniLM-L6-v2-q8e4.mote

web_encoder() {
	if [[ -s $WEB_ENCODER ]] && bin/mote embed "$WEB_ENCODER" -i ok >/dev/null 2>&1; then
		note "$WEB_ENCODER reads with bin/mote: up to date"
		return
	fi
	local gguf
	module_file gguf "$ENC_GGUF_FILE" "$ENC_GGUF_SHA256"
	printf '    $ %s\n' "bin/mote embed quant $gguf -o $WEB_ENCODER --type $ENC_TYPE"
	bin/mote embed quant "$gguf" -o "$WEB_ENCODER.partial" --type "$ENC_TYPE" || {
		rm -f "$WEB_ENCODER.partial"
		die "bin/mote embed quant failed"
	}
	run mv "$WEB_ENCODER.partial" "$WEB_ENCODER"
}

# web_entry prints one catalogue entry: ID LABEL FILE DEFAULT.
web_entry() {
	local f=dist/web/models/$3 sum
	sum=$(sha256sum "$f" | cut -c1-16)
	printf '{"id": "%s", "label": "%s", "url": "models/%s?v=%s", "bytes": %d, "default": %s}' \
		"$1" "$2" "$3" "$sum" "$(stat -c %s "$f")" "$4"
}

# ---- edge: the Cloudflare Worker (edge/, docs/EDGE.md) ----

WORKERD=node_modules/@cloudflare/workerd-linux-64/bin/workerd
EDGE_STAMP=.cache/edge/stamp
# Cloudflare's free plan takes Workers of at most 3 MiB compressed.
EDGE_MAX_GZIP=$((3 << 20))

# edge_settings prints the settings dist/edge is built with (kept in the
# stamp, so that a change rebuilds).
edge_settings() {
	printf 'model=%s tokenizer=%s source=%s\n' "${MOTE_EDGE_MODEL:-}" "${MOTE_EDGE_TOKENIZER:-}" "${MOTE_EDGE_SOURCE:-bundle}"
}

# edge_current says whether dist/edge is newer than everything it is made
# from and was built with the same settings.
edge_current() {
	[[ -f $EDGE_STAMP && -f dist/edge/workerd.capnp && -f dist/edge/app.wasm && -f dist/edge-nosimd/app.wasm ]] || return 1
	[[ $(cat "$EDGE_STAMP") == "$(edge_settings)" ]] || return 1
	local newer
	newer=$(find edge engine core models wasm/simd go.mod go.sum build.sh ${MOTE_EDGE_MODEL:+"$MOTE_EDGE_MODEL"} \
		$([[ -f $DEFAULT_MODEL ]] && echo "$DEFAULT_MODEL") -newer "$EDGE_STAMP" -type f -print -quit 2>/dev/null) || return 1
	[[ -z $newer ]]
}

# edge_model sets EDGE_MODEL_ARGS, the model flags of edgebundle: the
# user's MOTE_EDGE_MODEL, else the exact fp32 default model $DEFAULT_MODEL.
# While bin/mote cannot make that one, the same stories260K weights from
# ../shared (llama2.c's stories260K.bin with tok512.bin) stand in, loudly.
edge_model() {
	EDGE_MODEL_ARGS=()
	if [[ -n ${MOTE_EDGE_MODEL:-} ]]; then
		[[ -f $MOTE_EDGE_MODEL ]] || die "MOTE_EDGE_MODEL=$MOTE_EDGE_MODEL: no such file"
		EDGE_MODEL_ARGS=(-model "$MOTE_EDGE_MODEL" ${MOTE_EDGE_TOKENIZER:+-tokenizer "$MOTE_EDGE_TOKENIZER"})
	elif (build_model); then
		EDGE_MODEL_ARGS=(-model "$DEFAULT_MODEL" -name stories260K -max-gzip "$EDGE_MAX_GZIP")
	elif [[ -f ../shared/models/stories260K.bin && -f ../shared/models/tok512.bin ]]; then
		note "WARNING: $DEFAULT_MODEL could not be made; dist/edge bundles ../shared/models/stories260K.bin"
		note "with tok512.bin instead (the same fp32 stories260K)"
		EDGE_MODEL_ARGS=(-model ../shared/models/stories260K.bin -tokenizer ../shared/models/tok512.bin -name stories260K -max-gzip "$EDGE_MAX_GZIP")
	else
		die "no model for dist/edge: $DEFAULT_MODEL could not be made"
	fi
}

# edge_encoder sets EDGE_ENCODER_ARGS, the encoder flags of edgebundle:
# all-MiniLM-L6-v2 from $GGUF_MODULE put into our container by bin/mote
# embed quant (default --type gguf: the GGUF's blocks repacked losslessly,
# the same vectors as the GGUF; MOTE_EDGE_ENCODER_TYPE picks another spec),
# uncompressed (it loads without a second buffer). The Worker serves it for
# POST /v1/embeddings from static assets (docs/EDGE.md).
EDGE_ENCODER=.cache/edge/all-minilm-l6-v2.mote
edge_encoder() {
	local typ=${MOTE_EDGE_ENCODER_TYPE:-gguf}
	if [[ ! -s $EDGE_ENCODER || bin/mote -nt $EDGE_ENCODER || $(cat "$EDGE_ENCODER.type" 2>/dev/null) != "$typ" ]]; then
		local gguf
		module_file gguf "$ENC_GGUF_FILE" "$ENC_GGUF_SHA256"
		mkdir -p .cache/edge
		rm -f "$EDGE_ENCODER.type"
		run bin/mote embed quant "$gguf" -o "${EDGE_ENCODER%.mote}.partial.mote" --type "$typ" --compress none
		run mv "${EDGE_ENCODER%.mote}.partial.mote" "$EDGE_ENCODER"
		printf '%s\n' "$typ" >"$EDGE_ENCODER.type"
	fi
	EDGE_ENCODER_ARGS=(-encoder "$EDGE_ENCODER" -encoder-name all-minilm-l6-v2)
}

# build_edge writes dist/edge: the Worker (./edge/worker for GOOS=js with
# the SIMD kernels, its glue, the model, wrangler.jsonc and workerd.capnp)
# and dist/edge-nosimd, the same without SIMD (tests and benchmarks compare
# them). The gzip size of the upload is checked against the free plan's
# 3 MiB when the default model is bundled.
build_edge() {
	need_go
	build_kernels
	edge_model
	edge_encoder
	step "dist/edge: the Cloudflare Worker (GOOS=js ./edge/worker with SIMD, glue, model, configs)"
	mkdir -p .cache/edge
	run env GOOS=js GOARCH=wasm go vet ./edge/worker
	run env GOOS=js GOARCH=wasm go build -buildvcs=false -trimpath -ldflags='-s -w' -tags mote_simd -o .cache/edge/app-simd.wasm ./edge/worker
	run env GOOS=js GOARCH=wasm go build -buildvcs=false -trimpath -ldflags='-s -w' -o .cache/edge/app.wasm ./edge/worker
	local goroot
	goroot=$(go env GOROOT) || die "go env GOROOT failed"
	local common=(-wasm-exec "$goroot/lib/wasm/wasm_exec.js" -source "${MOTE_EDGE_SOURCE:-bundle}" "${EDGE_MODEL_ARGS[@]}" "${EDGE_ENCODER_ARGS[@]}")
	run go run ./edge/cmd/edgebundle -o dist/edge -app .cache/edge/app-simd.wasm -kernels wasm/simd/kernels.wasm "${common[@]}"
	step "dist/edge-nosimd: the same Worker without SIMD"
	run go run ./edge/cmd/edgebundle -o dist/edge-nosimd -app .cache/edge/app.wasm "${common[@]}" >/dev/null
	edge_settings >"$EDGE_STAMP"
}

# edge_workerd installs workerd from npm (package.json) when it is missing.
edge_workerd() {
	[[ -x $WORKERD ]] || npm_tools
	[[ -x $WORKERD ]] || die "$WORKERD is missing after npm ci"
}

cmd_edge() {
	local port=${1:-${MOTE_EDGE_PORT:-8787}}
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "bad port '$port'"
	if edge_current; then
		step "dist/edge is up to date (not rebuilt)"
	else
		build_bins
		build_edge
	fi
	edge_workerd
	step "workerd: dist/edge on http://127.0.0.1:$port/ (POST /v1/completions, POST /v1/embeddings, GET /v1/models, GET /healthz; Ctrl-C stops)"
	cd dist/edge
	exec "$ROOT/$WORKERD" serve workerd.capnp --socket-addr "http=127.0.0.1:$port"
}

# test_web runs the browser tests (web/test/*.test.mjs, node --test) in
# Debian's headless chromium against dist/web served by python3 -m
# http.server: the page (page.test.mjs; screenshot in tests/artifacts/) and
# core's tests built for js with the SIMD kernels (core.test.mjs).
test_web() {
	step "dist/webtest/core.test.wasm (GOOS=js GOARCH=wasm go test -c -tags mote_simd ./core)"
	mkdir -p dist/webtest
	run env GOOS=js GOARCH=wasm go test -c -buildvcs=false -tags mote_simd -o dist/webtest/core.test.wasm ./core
	step "browser tests: node --test web/test/*.test.mjs (headless ${MOTE_CHROMIUM:-/usr/bin/chromium})"
	[[ -x ${MOTE_CHROMIUM:-/usr/bin/chromium} ]] || die "${MOTE_CHROMIUM:-/usr/bin/chromium} not found (Debian: apt-get install chromium; .ci/run installs it)"
	command -v python3 >/dev/null || die "python3 not found (the browser tests serve dist/web with python3 -m http.server)"
	[[ -d node_modules/playwright-core ]] || npm_tools
	run env GOOS=js GOARCH=wasm go vet -tags 'mote_web mote_simd' ./wasm/js ./web/...
	MOTE_DIST=$ROOT/dist run node --test --test-concurrency=1 web/test/*.test.mjs
}

# bench_web runs the browser benchmarks (web/test/bench.mjs): navigation to
# first token cold and cached, bytes before the first token, and the page's
# tok/s for the catalogue's models and the 15M shape (q8, q4).
bench_web() {
	build_web
	npm_tools
	step "browser benchmarks: node web/test/bench.mjs (headless ${MOTE_CHROMIUM:-/usr/bin/chromium})"
	MOTE_DIST=$ROOT/dist run node web/test/bench.mjs
}

cmd_build() {
	build_bins
	build_model
	build_edge
	build_web
	step "sizes"
	local f
	for f in bin/mote dist/mote.wasm dist/mote-js.wasm "$DEFAULT_MODEL"; do
		size "$f"
	done
}

# npm_tools installs the npm packages the tests use (package.json: workerd
# for edge/, playwright-core for web/) when node_modules is missing or older
# than package-lock.json.
npm_tools() {
	[[ -f package.json ]] || return 0
	step "node_modules (npm packages for the tests, from package-lock.json)"
	if [[ -f node_modules/.package-lock.json && ! package-lock.json -nt node_modules/.package-lock.json ]]; then
		note "node_modules is up to date"
		return
	fi
	command -v npm >/dev/null || die "npm not found (Debian: apt-get install npm; .ci/run installs it)"
	run npm ci --no-audit --no-fund
}

cmd_test() {
	need_go
	step "gofmt"
	local bad
	bad=$(gofmt -l . | grep -v -e '^node_modules/' -e '^\.cache/' -e '^dist/' || true)
	[[ -z $bad ]] || die "these files need gofmt -w:
$bad"
	step "go vet ./... (native)"
	run go vet ./...
	step "go vet of the wasm entry points (GOOS=js ./wasm/js ./engine; GOOS=wasip1 ./cmd/mote)"
	run env GOOS=js GOARCH=wasm go vet ./wasm/js ./engine
	run env GOOS=wasip1 GOARCH=wasm go vet ./cmd/mote
	build_bins
	npm_tools
	build_edge
	edge_workerd
	build_web
	step "go test -timeout 30m ./... (MOTE_DIST=$ROOT/dist)"
	MOTE_DIST=$ROOT/dist run go test -timeout 30m ./...
	test_web
	step "all tests passed"
}

cmd_bench() {
	build_bins
	build_edge
	edge_workerd
	local pattern=${1:-.}
	shift || true
	local pkgs=("$@")
	((${#pkgs[@]})) || pkgs=(./...)
	step "benchmarks: -bench '$pattern' -benchtime ${BENCHTIME:-300ms} ${pkgs[*]}"
	MOTE_DIST=$ROOT/dist run go test -run '^$' -bench "$pattern" -benchtime "${BENCHTIME:-300ms}" "${pkgs[@]}"
	bench_web
	if [[ $pattern == . ]]; then
		step "decode matrix (mote bench --matrix; each cell its own process) -> dist/bench-matrix.md"
		local cells="${BENCH_SHAPES:-260K,15M}:${BENCH_TYPES:-f32,q8,q4}:native,wasip1"
		printf '    $ bin/mote bench --matrix %s --runs %s -n 256 > dist/bench-matrix.md\n' "$cells" "${BENCH_RUNS:-3}"
		bin/mote bench --matrix "$cells" --runs "${BENCH_RUNS:-3}" -n 256 >dist/bench-matrix.md ||
			die "mote bench --matrix failed"
		cat dist/bench-matrix.md
	fi
}

cmd_serve() {
	need_go
	local port=${1:-8080}
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "bad port '$port'"
	build_bins
	build_web
	step "serving dist/web on http://127.0.0.1:$port/ (go run ./wasm/serve)"
	exec go run ./wasm/serve -dir dist/web -addr "127.0.0.1:$port"
}

cmd_clean() {
	step "removing bin/ dist/ .cache/"
	run rm -rf bin dist .cache
}

main() {
	local cmd=${1:-build}
	shift || true
	case $cmd in
	build) cmd_build "$@" ;;
	test) cmd_test "$@" ;;
	bench) cmd_bench "$@" ;;
	serve) cmd_serve "$@" ;;
	model) build_model "$@" ;;
	web) build_bins && build_web "$@" ;;
	edge) cmd_edge "$@" ;;
	clean) cmd_clean "$@" ;;
	help | -h | --help) usage ;;
	*)
		usage >&2
		die "unknown command '$cmd'"
		;;
	esac
}

main "$@"
