//go:build !linux

package goroutine

// sendRegionZeroCopy has no sendfile path here: regions are copied.
func (c *conn) sendRegionZeroCopy(fileRegion) (bool, error) { return false, nil }
