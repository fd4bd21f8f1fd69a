// Command package makes what an operator installs, into a folder (dist/ by
// make package): the function's Lambda zips with their sha256, and the jobs'
// OCI image index, whose digest it prints.
//
//	package -root PROJECT -out DIST
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"runboat.dev/shared/release"
)

func main() {
	root := flag.String("root", "..", "the project's folder (holding functions/ and jobs/)")
	out := flag.String("out", "../dist", "the folder the artifacts go to")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *root, *out, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root, out string, w io.Writer) error {
	res, err := release.Package(ctx, root, out)
	if err != nil {
		return err
	}
	for _, f := range res.Files {
		info, err := os.Stat(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%-40s %11d bytes\n", filepath.Base(f), info.Size())
	}
	for _, arch := range release.Architectures {
		fmt.Fprintf(w, "bootstrap %-5s %d bytes (at most %d for arm64)\n", arch, res.BootstrapSizes[arch], release.MaxBootstrapSize)
	}
	fmt.Fprintf(w, "jobs image index digest: %s\n", res.IndexDigest)
	return nil
}
