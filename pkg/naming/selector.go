package naming

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ErrInvalidSelector is wrapped by every error SelectorMatchers returns: the metric selector
// of a request cannot be turned into PromQL (a key that is not a Prometheus label name, a
// value that is not a Kubernetes label value, an operator PromQL lacks). It is the client's
// mistake, so the API answers it with 400 Bad Request.
var ErrInvalidSelector = errors.New("invalid metric label selector")

// invalidSelector returns an error wrapping ErrInvalidSelector whose text is
// "invalid metric label selector: REASON".
func invalidSelector(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSelector, fmt.Sprintf(format, args...))
}

// SelectorMatchers converts a Kubernetes label selector (an HPA's metric selector or a
// metricLabelSelector) into PromQL matchers. Keys must be legacy Prometheus label names
// (ValidLabelName) and values valid Kubernetes label values (what the apiserver's selector
// parser admits): anything else is rejected, wrapped in ErrInvalidSelector, rather than
// mangled. Values are matched literally: `in` becomes a regex of regex-escaped values, never
// a pass-through. Keys stay legacy even though rules may name UTF-8 labels: a key such as
// app.kubernetes.io/name keeps its clear 400 instead of becoming a quoted label name that
// Prometheus 2 cannot parse.
func SelectorMatchers(sel labels.Selector) ([]Matcher, error) {
	ms, _, err := selectorParts(sel)
	return ms, err
}

// selectorParts returns the selector's matchers and, per key, its values for
// .LabelValuesByName (LabelValues of the values; "" for exists and !exists), as
// prometheus-adapter fills that map from the metric selector.
func selectorParts(sel labels.Selector) ([]Matcher, map[string]string, error) {
	values := map[string]string{}
	if sel == nil {
		return nil, values, nil
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, nil, invalidSelector("%q can never match; send a selector that can", sel.String())
	}
	var out []Matcher
	for _, r := range reqs {
		key := r.Key()
		if !ValidLabelName(key) {
			return nil, nil, invalidSelector("key %q is not a valid Prometheus label name (letters, digits and underscores, not starting with a digit); select on the series' own label names", key)
		}
		vals := r.Values().List() // sorted
		for _, v := range vals {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return nil, nil, invalidSelector("the value %q of key %q is not a valid label value: %s", v, key, strings.Join(errs, "; "))
			}
		}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			out = append(out, Matcher{key, OpEqual, vals[0]})
		case selection.NotEquals:
			out = append(out, Matcher{key, OpNotEqual, vals[0]})
		case selection.In:
			if len(vals) == 1 {
				out = append(out, Matcher{key, OpEqual, vals[0]})
			} else {
				out = append(out, Matcher{key, OpRegex, AnyOf(vals)})
			}
		case selection.NotIn:
			if len(vals) == 1 {
				out = append(out, Matcher{key, OpNotEqual, vals[0]})
			} else {
				out = append(out, Matcher{key, OpNotRegex, AnyOf(vals)})
			}
		case selection.Exists:
			out = append(out, Matcher{key, OpNotEqual, ""})
		case selection.DoesNotExist:
			out = append(out, Matcher{key, OpEqual, ""})
		default:
			return nil, nil, invalidSelector("operator %q (in %q) is not supported: use =, !=, in, notin, exists or !exists", r.Operator(), r.String())
		}
		values[key] = LabelValues(vals)
	}
	return out, values, nil
}
