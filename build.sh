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
                   dist/mote-js.wasm   the js build (GOOS=js), with dist/mote.js
                                       (its JavaScript API) and dist/wasm_exec.js
                   dist/models/stories260K.mote
                                       the default model, converted from the
                                       GGUF in github.com/mutablelogic/go-llama
  test             gofmt check, go vet (native, js, wasip1), builds the binaries,
                   npm ci when node_modules is stale, then
                   go test -timeout 30m ./... (tests use dist/ via MOTE_DIST)
  bench [REGEXP [PACKAGES...]]
                   builds the binaries, then
                   go test -run '^$' -bench REGEXP -benchtime $BENCHTIME PACKAGES
                   (defaults: all benchmarks, BENCHTIME=300ms, ./...); decode
                   benchmarks report tok/s, e.g. ./build.sh bench Decode ./wasm/...
  serve [PORT]     serves dist/web on http://127.0.0.1:PORT/ (default 8080)
  model            only the default model step
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
	step "dist/mote-js.wasm (GOOS=js GOARCH=wasm, ./wasm/js) with dist/mote.js and dist/wasm_exec.js"
	run env GOOS=js GOARCH=wasm go build -buildvcs=false -trimpath -ldflags='-s -w' -o dist/mote-js.wasm ./wasm/js
	copy_if_changed wasm/js/mote.js dist/mote.js
	local goroot
	goroot=$(go env GOROOT) || die "go env GOROOT failed"
	[[ -f $goroot/lib/wasm/wasm_exec.js ]] || die "$goroot/lib/wasm/wasm_exec.js not found (Go 1.24+ keeps it in lib/wasm)"
	copy_if_changed "$goroot/lib/wasm/wasm_exec.js" dist/wasm_exec.js
}

build_model() {
	need_go
	step "default model $DEFAULT_MODEL"
	if [[ -s $DEFAULT_MODEL && $DEFAULT_MODEL -nt bin/mote ]]; then
		note "$DEFAULT_MODEL is newer than bin/mote: up to date"
		return
	fi
	[[ -x bin/mote ]] || die "bin/mote is missing; run ./build.sh build"
	local tmp json dir gguf sum
	tmp=$(mktemp -d)
	# An empty folder outside any module, so that our go.mod is not touched.
	note "fetching $GGUF_MODULE (go mod download, in a throwaway folder)"
	json=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$GGUF_MODULE") ||
		{ rm -rf "$tmp"; die "go mod download $GGUF_MODULE failed:
$json"; }
	rm -rf "$tmp"
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p')
	[[ -n $dir ]] || die "no Dir in the output of go mod download:
$json"
	gguf=$dir/$GGUF_FILE
	[[ -f $gguf ]] || die "$GGUF_FILE not found in $dir"
	sum=$(sha256sum "$gguf" | cut -d' ' -f1)
	[[ $sum == "$GGUF_SHA256" ]] || die "$gguf has sha256 $sum, want $GGUF_SHA256"
	note "verified sha256 of $gguf"
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

cmd_build() {
	build_bins
	build_model
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
	step "go test -timeout 30m ./... (MOTE_DIST=$ROOT/dist)"
	MOTE_DIST=$ROOT/dist run go test -timeout 30m ./...
	step "all tests passed"
}

cmd_bench() {
	build_bins
	local pattern=${1:-.}
	shift || true
	local pkgs=("$@")
	((${#pkgs[@]})) || pkgs=(./...)
	step "benchmarks: -bench '$pattern' -benchtime ${BENCHTIME:-300ms} ${pkgs[*]}"
	MOTE_DIST=$ROOT/dist run go test -run '^$' -bench "$pattern" -benchtime "${BENCHTIME:-300ms}" "${pkgs[@]}"
}

cmd_serve() {
	need_go
	local port=${1:-8080}
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "bad port '$port'"
	mkdir -p dist/web
	if [[ ! -f dist/web/index.html ]]; then
		step "dist/web/index.html (placeholder until the web UI is built)"
		cat >dist/web/index.html <<'EOF'
<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>mote</title>
<h1>mote</h1>
<p>The web UI is coming. This placeholder loads nothing.</p>
<p>Meanwhile: <code>./build.sh</code>, then <code>bin/mote run</code>.</p>
</html>
EOF
	fi
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
	clean) cmd_clean "$@" ;;
	help | -h | --help) usage ;;
	*)
		usage >&2
		die "unknown command '$cmd'"
		;;
	esac
}

main "$@"
