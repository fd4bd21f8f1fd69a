// Command pause is the sandbox of the pods of the local cluster's real node
// (containerd's "sandbox_image"): it holds the pod's namespaces and sleeps
// until it is told to stop. The local cluster builds it and packs it as an
// image, so nothing is pulled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
