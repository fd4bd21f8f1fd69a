package runner

import (
	"errors"
	"iter"
	"sync"

	"runboat.dev/shared/model"
)

// Readers bounds the reads a job makes at once beyond the list of the
// builds (the Jobs, pods and logs of a few builds).
const Readers = 8

// ReadEach calls read on each of items, at most Readers at once, and
// returns the errors joined. Each call writes its results where its item
// says, so that they come out in the order of items whatever the order the
// reads end in.
func ReadEach[T any](items []T, read func(T) error) error {
	errs := make([]error, len(items))
	sem := make(chan struct{}, Readers)
	var wg sync.WaitGroup
	for i, item := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = read(item)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Models yields the build model of each of bs, for quota.Count.
func Models(bs []*Build) iter.Seq[model.Build] {
	return func(yield func(model.Build) bool) {
		for _, b := range bs {
			if !yield(b.Build) {
				return
			}
		}
	}
}
