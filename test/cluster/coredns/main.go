// Command coredns is CoreDNS built from its pinned Go module with only the plugins the test cluster's
// Corefile uses, so that the cluster DNS comes from upstream sources without a registry and the build
// stays small (the default build pulls every cloud SDK).
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins the Corefile in test/cluster/node names; each registers itself in init.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
