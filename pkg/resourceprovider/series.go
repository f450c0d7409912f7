package resourceprovider

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Labels a resource query may put on samples to tell the adapter more than a usage. A
// prometheus-adapter template (`sum by (<<.GroupBy>>) (...)`) yields neither and is read as
// it always was: every sample is a usage over resourceRules.window. Both keep the rule at
// one query per resource per request: they ride in the same result, told apart by a label
// that `label_replace` adds and that no usage sample has.
const (
	// WindowLabel on a cpu usage sample is the window its rate covers, in Prometheus'
	// duration syntax ("1m"). A query that falls back from a short rate window to longer ones
	// where the short one holds fewer than two samples (a slower scrape) labels the fallbacks
	// with their window, so every PodMetrics says what its value really covers: the HPA
	// ignores a new pod's cpu until timestamp-window is after the pod became Ready.
	WindowLabel = "promadapter_window"

	// SeriesLabel marks a sample that is no usage but the number of source series of its group
	// (the labels beside SeriesLabel). Above 1 the group is duplicated: the same container or
	// node scraped by two jobs, or two Prometheus replicas read without deduplication, whose
	// `sum by` would double the usage. The request then fails naming the rule and the labels,
	// rather than serve twice the usage. A query exposes it with
	//
	//	<usage> or label_replace(count by (<<.GroupBy>>, id) (<selector>) > 1, "promadapter_series", "count", "", "")
	//
	// where `> 1` keeps the result as small as before when nothing is duplicated, and the `id`
	// (cAdvisor's cgroup) keeps the old and the new cgroup of a restarted container, briefly
	// both present, from counting as duplicates. It is an `or` of a count rather than an
	// aggregation that cannot double (max by the group, say) because an operator must learn
	// that every series is stored twice, and because a sum is right for a container that
	// legitimately has several series.
	SeriesLabel = "promadapter_series"
)

// sampleReader tells usage samples from series counts and finds each usage's window. One
// reader serves one result; it is not safe for concurrent use.
type sampleReader struct {
	// rule names the query for messages ("resourceRules.cpu.containerQuery").
	rule string
	// plain is the number of labels a usage sample has when it carries no marker label (the
	// group-by labels): samples with no more are read without a label lookup.
	plain int
	// window is resourceRules.window, the window of a usage sample without WindowLabel; zero
	// for memory, whose samples are instantaneous (their WindowLabel is ignored).
	window time.Duration
	// lastText and lastWindow remember the last WindowLabel parsed: a result holds few.
	lastText   model.LabelValue
	lastWindow time.Duration
}

// read reports the window of s when it is a usage, or count=true when it is a series count.
func (r *sampleReader) read(s *model.Sample) (window time.Duration, count bool, err error) {
	if len(s.Metric) <= r.plain {
		return r.window, false, nil
	}
	if _, ok := s.Metric[SeriesLabel]; ok {
		return 0, true, nil
	}
	text, ok := s.Metric[WindowLabel]
	if !ok || r.window == 0 {
		return r.window, false, nil
	}
	if text != r.lastText || r.lastWindow == 0 {
		d, err := model.ParseDuration(string(text))
		if err != nil || d <= 0 {
			return 0, false, apierrors.NewInternalError(fmt.Errorf("%s: the sample %s has %s=%q, which is no window: it must be a Prometheus duration such as 1m, the range of the rate it labels",
				r.rule, s.Metric, WindowLabel, text))
		}
		r.lastText, r.lastWindow = text, time.Duration(d)
	}
	return r.lastWindow, false, nil
}

// duplicates collects the duplicated groups of one result that concern the objects asked for.
type duplicates struct {
	rule   string
	first  model.Metric
	series float64
	groups int
}

// add records a series count sample; counts of 1 or less are no duplicates.
func (d *duplicates) add(s *model.Sample) {
	if s.Value <= 1 {
		return
	}
	if d.groups == 0 {
		d.first = make(model.Metric, len(s.Metric)-1)
		for k, v := range s.Metric {
			if k != SeriesLabel {
				d.first[k] = v
			}
		}
		d.series = float64(s.Value)
	}
	d.groups++
}

// err is the request's error when there are duplicates, else nil. scope describes the
// request ("pods in namespace \"x\"").
func (d *duplicates) err(scope string) error {
	if d == nil || d.groups == 0 {
		return nil
	}
	more := ""
	if d.groups > 1 {
		more = fmt.Sprintf(" (and %d more duplicated groups among the %s)", d.groups-1, scope)
	}
	return apierrors.NewInternalError(fmt.Errorf("%s: Prometheus holds %g series for %s where one is expected%s, and adding them up would report %g times the usage: "+
		"is the same target scraped by two jobs, or are Prometheus replicas read without deduplication (Thanos Query: --query.replica-label)? Drop one of the scrapes or deduplicate; Prometheus' series with the labels above show which",
		d.rule, d.series, d.first, more, d.series))
}

// answerDuplicate is the error for a result holding two usage samples for one container or
// node: second, and the first of result whose key labels equal its own. It is built on the
// error path only, so the samples need not remember their labels.
//
// One sample per container (or node) is the contract of a resource query: a template that
// does not aggregate by <<.GroupBy>> would otherwise have each container's series added up,
// and so would copies of one series (two scrape jobs, replicas without deduplication), the
// very fault that must never be served as twice the usage.
func answerDuplicate(rule string, result model.Vector, second *model.Sample, key []model.LabelName) error {
	var first model.Metric
	for _, s := range result {
		if s == second {
			break
		}
		same := true
		for _, k := range key {
			if s.Metric[k] != second.Metric[k] {
				same = false
				break
			}
		}
		if same {
			if _, count := s.Metric[SeriesLabel]; !count {
				first = s.Metric
				break
			}
		}
	}
	return apierrors.NewInternalError(fmt.Errorf("%s: the result holds two samples for the same object, %s and %s, where one is expected; adding them up could report twice the usage: "+
		"aggregate in the query with sum by (<<.GroupBy>>) if they are parts of one usage, or, if they are copies of one series (a target scraped by two jobs, Prometheus replicas read without deduplication), drop one of the scrapes or deduplicate",
		rule, first, second.Metric))
}
