package client

// ExpandRangesWithin is expandRanges, for the fuzz test's smaller bounds.
var ExpandRangesWithin = expandRanges
