// Command pause is the sandbox ("pause") container of the local node's pods: it holds the
// pod's namespaces and nothing else. The node cannot pull registry.k8s.io/pause, so this
// static binary is built here and packed into an image (hack/images). It sleeps until
// SIGINT or SIGTERM and reaps children re-parented to it (pods sharing one PID namespace).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
