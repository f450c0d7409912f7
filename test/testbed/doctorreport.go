package testbed

import "strings"

// DoctorFinding returns, from the text report of `promadapter doctor`, the first check whose line
// starts with mark ("✓", "!", "✗", "-") and name: that line with the indented evidence and fix
// below it.
func DoctorFinding(report, mark, name string) (string, bool) {
	lines := strings.Split(report, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, mark+" "+name) {
			continue
		}
		end := i + 1
		for end < len(lines) && strings.HasPrefix(lines[end], "    ") {
			end++
		}
		return strings.Join(lines[i:end], "\n"), true
	}
	return "", false
}

// DoctorFixCommand returns the command in a finding's fix that starts with prefix, up to the
// end of its line or a parenthesised remark (" (").
func DoctorFixCommand(finding, prefix string) (string, bool) {
	for _, line := range strings.Split(finding, "\n") {
		if i := strings.Index(line, prefix); i >= 0 {
			command, _, _ := strings.Cut(line[i:], " (")
			return command, true
		}
	}
	return "", false
}
