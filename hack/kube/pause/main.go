// Command pause is the local node's pod sandbox image: it holds the pod's namespaces and sleeps until
// it is told to stop (what registry.k8s.io/pause does, which this machine cannot pull).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	// As PID 1 of the pod, reap the children that get re-parented to the sandbox.
	signal.Ignore(syscall.SIGCHLD)
	<-stop
}
