# Sourced by the scripts of tests/cluster: where the Go caches and the built binaries live
# (ignored folders of this directory, kept between runs), and the Go settings every build uses.
# shellcheck shell=bash
CLUSTER_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# CLUSTER_CACHE moves all three elsewhere (CI keeps them outside its fresh clone).
CLUSTER_CACHE="${CLUSTER_CACHE:-$CLUSTER_HOME}"
export GOCACHE="${GOCACHE_OVERRIDE:-$CLUSTER_CACHE/.cache/go-build}"
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CLUSTER_CACHE/.cache/mod}"
# Module caches are read-only by default, which makes them awkward to delete.
export GOFLAGS="-modcacherw -trimpath -buildvcs=false"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
CLUSTER_BIN="$CLUSTER_CACHE/bin"

# One line on standard error, and exit.
die() {
	echo "tests/cluster: $*" >&2
	exit 1
}

# Go must be there before anything is built.
need_go() {
	command -v go >/dev/null 2>&1 ||
		die "no Go toolchain on the PATH: install Go 1.26 or newer (https://go.dev/doc/install)"
}

# Whether the module proxy answers; one line and exit if it does not.
need_proxy() {
	(cd / && timeout 60 go list -m -versions k8s.io/kubernetes >/dev/null 2>&1) ||
		die "the Go module proxy (GOPROXY=$GOPROXY) does not answer: the first build downloads the modules from it"
}
