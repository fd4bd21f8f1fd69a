package kubefiles

import (
	"sync"
	"testing"
)

func TestTmpConcurrent(t *testing.T) {
	fsys := defaultKubefiles(t, "odoo")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range requiredModes {
				if _, err := Render(fsys, m, testVars(t)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}
