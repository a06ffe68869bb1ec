package campaign

import "bytes"

// ParseJournal reads a journal from its bytes as LoadJournalFile reads
// the file (for callers that already hold them, and the fuzz targets).
func ParseJournal(b []byte) (*Journal, error) { return readJournal(bytes.NewReader(b)) }
