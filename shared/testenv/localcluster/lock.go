package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lock takes the cluster's file lock, so that several processes (test
// packages run in parallel, a make target) never build or start the cluster
// at the same time. The lock is released by the returned function, or by the
// kernel if the process dies.
func (c *Cluster) lock(ctx context.Context) (func(), error) {
	return lockFile(ctx, filepath.Join(c.cacheDir, c.name+".lock"))
}

// buildLock takes the lock of the version's build, shared by every cluster
// of the cache folder: clusters of other names build the same binaries.
func (c *Cluster) buildLock(ctx context.Context) (func(), error) {
	return lockFile(ctx, c.versionDir()+".lock")
}

// lockFile takes the exclusive lock of the file path, creating it and its
// folder if need be.
func lockFile(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create the folder of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open the lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("failed to lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("failed to lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
