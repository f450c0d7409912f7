package main

import (
	"fmt"
	"slices"
)

// mergeSizes adds to r the sizes of earlier runs' results (paths) that r did not measure, so that
// one report and plot can show sizes too long to measure in every run (150,000 pods take about
// half an hour on 2 CPUs). Each merged size keeps when and of which build it was measured; the
// report prints both for every size. Of several earlier runs that measured a size, the first
// path given wins.
func mergeSizes(r *Results, paths []string) error {
	for _, path := range paths {
		earlier, err := readResults(path)
		if err != nil {
			return fmt.Errorf("-merge: %w", err)
		}
		for _, s := range earlier.Sizes {
			if sizeOf(r, s.Pods) != nil {
				continue
			}
			if s.Measured.IsZero() {
				s.Measured = earlier.Started
			}
			if s.Promadapter == "" {
				s.Promadapter = earlier.Versions.Promadapter
			}
			if s.AdapterGoMemLimit == "" {
				s.AdapterGoMemLimit = earlier.AdapterGoMemLimit
			}
			r.Sizes = append(r.Sizes, s)
		}
	}
	slices.SortStableFunc(r.Sizes, func(a, b SizeResult) int { return a.Pods - b.Pods })
	return nil
}
