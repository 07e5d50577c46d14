#!/bin/sh
# Build the vCenter simulator launcher (tests/vcsim/vcsim) from the .go files of this directory,
# offline, with the Debian-packaged govmomi 0.24. Rebuilds only when the binary is missing or
# older than one of them.
# When Go or the govmomi sources are missing, installs golang-go and
# golang-github-vmware-govmomi-dev with apt-get (needs root, as in CI).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin="$here/vcsim"
gopath=/usr/share/gocode
govmomi="$gopath/src/github.com/vmware/govmomi/simulator"

# the stock simulator (stock/main.go): govmomi's VPX model as the library ships it
stock_bin="$here/vcsim-stock"

stale=no
if [ ! -x "$bin" ] || [ ! -x "$stock_bin" ] || [ "$here/stock/main.go" -nt "$stock_bin" ]; then
    stale=yes
else
    for src in "$here"/*.go; do
        if [ "$src" -nt "$bin" ]; then
            stale=yes
        fi
    done
fi
if [ "$stale" = no ]; then
    exit 0
fi

if ! command -v go >/dev/null 2>&1 || [ ! -d "$govmomi" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: go or govmomi is missing and apt-get is not available" >&2
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "build.sh: go or govmomi is missing; installing them needs root (apt-get)" >&2
        exit 1
    fi
    echo "build.sh: installing golang-go golang-github-vmware-govmomi-dev" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends golang-go golang-github-vmware-govmomi-dev >&2
fi

cache="${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/go-build}"
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cd "$here"
GO111MODULE=off GOPATH="$gopath" GOCACHE="$cache" go build -o "$tmp" . >&2
mv "$tmp" "$bin"
(cd "$here/stock" && GO111MODULE=off GOPATH="$gopath" GOCACHE="$cache" go build -o "$tmp" . >&2)
mv "$tmp" "$stock_bin"
