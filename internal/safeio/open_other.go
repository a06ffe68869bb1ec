//go:build !unix

package safeio

import "os"

// openNonblock refuses what Stat already shows is not a regular file, so
// that opening it cannot block; Open checks the opened file again.
func openNonblock(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Kind: kind(fi.Mode())}
	}
	return os.Open(path)
}
