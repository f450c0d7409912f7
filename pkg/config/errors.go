package config

import (
	"fmt"
	"strings"
)

// Problem is one mistake in a config file: where it is, what is wrong and how to fix it.
type Problem struct {
	// Source names the file the problem is in (a path, or "<embedded default>").
	Source string
	// Line and Column are 1-based; 0 means unknown (YAML syntax errors carry no column).
	Line, Column int
	// Path locates the value in the config, e.g. "rules[1].name.matches" (list indexes count
	// from 0); empty when the problem is about the file rather than one value.
	Path string
	// Message says what is wrong, then after "; " what to do about it.
	Message string
}

// String renders the problem as FILE:LINE:COLUMN: PATH: MESSAGE, leaving out the parts that
// are unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Source)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is what Parse and Load return for a config with mistakes: every problem found,
// sorted by position. Its text is one problem per line.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// quotedList renders names as `"a"`, `"a" and "b"` or `"a", "b" and "c"`.
func quotedList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return andList(quoted)
}

// andList joins items as "a", "a and b" or "a, b and c".
func andList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// closest returns the candidate nearest to name when it is near enough to be a likely typo
// (case, underscores and dashes are ignored; a few edits are allowed, more for longer
// names), or "" when none is.
func closest(name string, candidates []string) string {
	normalize := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	n := normalize(name)
	best, bestDistance := "", -1
	for _, c := range candidates {
		d := editDistance(n, normalize(c))
		if bestDistance < 0 || d < bestDistance {
			best, bestDistance = c, d
		}
	}
	if bestDistance < 0 || bestDistance > max(1, min(3, len(best)/3)) {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b: insertions,
// deletions, substitutions and swaps of adjacent characters each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
