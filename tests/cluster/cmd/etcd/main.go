// Command etcd is etcd's own server, go.etcd.io/etcd/server/v3/etcdmain, at the version the
// Kubernetes release of go.mod pins: the store of the control plane of tests/cluster.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
