// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 the way
// etcd's own root main.go does, so the test cluster needs no downloaded binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
