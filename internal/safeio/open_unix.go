//go:build unix

package safeio

import (
	"os"
	"syscall"
)

// openNonblock opens path with O_NONBLOCK, so that opening a FIFO with no
// writer returns at once (Open then refuses it); regular files ignore it.
func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
