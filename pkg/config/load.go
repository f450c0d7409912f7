package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultSource is the Source of the embedded default config.
const DefaultSource = "<embedded default>"

//go:embed default.yaml
var defaultYAML []byte

// Load reads the config at path; an empty path loads the embedded default (Source
// "<embedded default>"). A config with mistakes returns an *Error listing all of them.
func Load(path string) (*Config, error) {
	if path == "" {
		return Parse(defaultYAML, DefaultSource)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config file: %w; check the --config flag", err)
	}
	return Parse(data, path)
}

// Parse decodes data strictly; source names the file in every error message. On mistakes it
// returns a nil Config and an *Error with every problem found, sorted by position. Empty data
// (or only comments) is a valid config with no rules.
func Parse(data []byte, source string) (*Config, error) {
	d := &decoder{source: source}
	var root *yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.syntaxError(err, data)
			break
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue // an empty document, e.g. a trailing "---"
		}
		if root != nil {
			d.report(doc.Content[0], "", `a second YAML document starts here; a config file holds one document: remove the "---" before it and merge its fields into the first`)
			break
		}
		root = doc.Content[0]
	}
	c := &Config{Source: source}
	if root != nil {
		c = d.config(root)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	c.Warnings = d.sortedWarnings()
	return c, nil
}

// Default returns the embedded default config, parsed anew on each call so the caller owns
// it. It panics only if the embedded file is broken, which TestDefault guards against.
func Default() *Config {
	c, err := Parse(defaultYAML, DefaultSource)
	if err != nil {
		panic("config: the embedded default.yaml does not load:\n" + err.Error())
	}
	return c
}

// DefaultYAML returns the embedded default file's bytes (a copy the caller may change).
func DefaultYAML() []byte {
	return bytes.Clone(defaultYAML)
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to its scanner). For
// these it prints a 0-based line: the line where the enclosing mapping or list starts, or
// the line of the offending token when there is no enclosing one.
var yamlParserProblems = []string{
	"did not find expected key",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
}

// syntaxError records a YAML syntax error. yaml.v3 gives only a line: 1-based for scanner
// errors, 0-based for parser errors, and none at all when it would be 0, that is on the
// first line of the file. Errors about the bytes themselves (encoding) have no position.
func (d *decoder) syntaxError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlErrorLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(yamlParserProblems, msg) {
			line++
		}
	} else if !strings.Contains(msg, "UTF-8") && !strings.Contains(msg, "control characters") && !strings.HasPrefix(msg, "input error") {
		line = 1
	}
	fix := `check the indentation and quoting on this line and the one before it (quote values that start with "{", "[", "*", "&", "!", "%" or "@", or that contain ": " or " #")`
	if line > 0 {
		if lines := strings.Split(string(data), "\n"); line <= len(lines) && strings.Contains(lines[line-1], "\t") {
			fix = "YAML does not allow tabs for indentation; indent with spaces"
		}
	}
	d.problems = append(d.problems, Problem{Source: d.source, Line: line, Message: "YAML syntax error: " + msg + "; " + fix})
}
