// Package atomicfile replaces files atomically: a reader sees the old file or the new one, never part of
// either, and a crash leaves the old file in place.
package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// Write fills a temporary file in path's folder with write, fsyncs it when sync is set, makes it mode 0644
// and renames it over path. On any error the temporary file is removed and path is left as it was. The
// errors are returned unwrapped, for the caller to name the file its own way.
func Write(path string, sync bool, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close(), os.Remove(f.Name()))
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteFile is Write for data already in memory.
func WriteFile(path string, data []byte, sync bool) error {
	return Write(path, sync, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
