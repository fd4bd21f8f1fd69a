package release

import (
	"archive/zip"
	"bytes"
	"fmt"
	"time"
)

// BootstrapName is the executable Lambda's provided runtimes start.
const BootstrapName = "bootstrap"

// zipTime is the modification time of every file in a zip: the earliest an
// MS-DOS time can say, so that a zip depends on its content only.
var zipTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// FunctionZip returns the Lambda zip of a bootstrap: one file, bootstrap,
// mode 0755, at a fixed time.
func FunctionZip(bootstrap []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: BootstrapName, Method: zip.Deflate, Modified: zipTime}
	h.SetMode(0o755)
	f, err := w.CreateHeader(h)
	if err != nil {
		return nil, fmt.Errorf("failed to add %s to the zip: %w", BootstrapName, err)
	}
	if _, err := f.Write(bootstrap); err != nil {
		return nil, fmt.Errorf("failed to write %s to the zip: %w", BootstrapName, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("failed to finish the zip: %w", err)
	}
	return buf.Bytes(), nil
}

// ZipBootstrap returns the bootstrap of a function zip, and its mode.
func ZipBootstrap(data []byte) ([]byte, uint32, error) {
	r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read the zip: %w", err)
	}
	for _, f := range r.File {
		if f.Name != BootstrapName {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("failed to open %s in the zip: %w", BootstrapName, err)
		}
		b, err := readAll(rc)
		if err != nil {
			return nil, 0, fmt.Errorf("failed to read %s in the zip: %w", BootstrapName, err)
		}
		return b, uint32(f.Mode().Perm()), nil
	}
	return nil, 0, fmt.Errorf("no %s in the zip", BootstrapName)
}
