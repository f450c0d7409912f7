package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteJSON writes the traces as one JSON array, for machines.
func WriteJSON(w io.Writer, traces []Trace) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(traces)
}

// WriteText writes t for people: what was asked, then numbered steps in the order the
// adapter took them, then the result.
func WriteText(w io.Writer, t Trace) error {
	var b strings.Builder
	if t.Request.Title != "" {
		fmt.Fprintf(&b, "%s\n", t.Request.Title)
	}
	fmt.Fprintf(&b, "GET %s\n", t.Request.Path)
	step := 0
	say := func(format string, args ...any) {
		step++
		fmt.Fprintf(&b, "%2d. %s\n", step, fmt.Sprintf(format, args...))
	}
	if t.Rule != nil {
		say("Rule: %s serves %s from series %q.", t.Rule.ID, servedWhat(t.Rule), t.Rule.Series)
		if t.Rule.MetricsQuery != "" {
			fmt.Fprintf(&b, "      metricsQuery: %s\n", t.Rule.MetricsQuery)
		}
	}
	if n := t.NoRule; n != nil {
		if t.Forwarded {
			say("Rule: none serves external metric %q; the request was forwarded to the server of --external-metrics-forward-url.", n.Metric)
		} else if n.Resource != "" {
			say("Rule: none serves metric %q for %s (why: see the result).", n.Metric, n.Resource)
		} else {
			say("Rule: none serves external metric %q (why: see the result).", n.Metric)
		}
	}
	if o := t.Objects; o != nil {
		say("Objects: %s", objectsText(o))
	}
	for _, q := range t.Queries {
		say("Query (%s, %s): %s", q.What, q.Rule, sentText(q))
		fmt.Fprintf(&b, "      %s\n", q.PromQL)
		if q.Error != "" {
			continue
		}
		say("Answer (%s): %s", q.What, answerText(q))
		for _, s := range q.Samples {
			fmt.Fprintf(&b, "      %s %s at %s\n", labelsText(s.Labels), s.Value, s.Time.Format(time.RFC3339Nano))
		}
	}
	if len(t.Values) > 0 {
		say("Served: %d value(s):", len(t.Values))
		for _, v := range t.Values {
			fmt.Fprintf(&b, "      %s = %s at %s", v.Object, v.Value, v.Time.Format(time.RFC3339))
			if v.Window != "" {
				fmt.Fprintf(&b, " (window %s)", v.Window)
			}
			if v.Note != "" {
				fmt.Fprintf(&b, " (%s)", v.Note)
			}
			b.WriteString("\n")
		}
	}
	if len(t.LeftOut) > 0 {
		say("Left out: %d object(s) get no value:", len(t.LeftOut))
		for _, l := range t.LeftOut {
			fmt.Fprintf(&b, "      %s: %s\n", l.Object, l.Reason)
		}
	}
	for _, bk := range t.Backends {
		if bk.Error != "" {
			say("Backend %q at %s does not answer (%s): %s", bk.Name, bk.URL, bk.Cause, bk.Error)
		}
	}
	if t.Served {
		fmt.Fprintf(&b, "Result: served %d value(s) (HTTP %d).\n", len(t.Values), t.Status.Code)
	} else {
		code, text := "", ""
		if t.Reason != nil {
			code, text = t.Reason.Code, t.Reason.Text
		}
		fmt.Fprintf(&b, "Result: nothing served (HTTP %d, %s): %s\n", t.Status.Code, code, text)
		if t.Status.Message != "" && t.Status.Message != text {
			fmt.Fprintf(&b, "The API answered: %s\n", t.Status.Message)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func servedWhat(r *Rule) string {
	if r.Resource == "" {
		return fmt.Sprintf("external metric %q", r.Metric)
	}
	return fmt.Sprintf("metric %q for %s", r.Metric, r.Resource)
}

func objectsText(o *Objects) string {
	if o.Error != "" {
		return fmt.Sprintf("listing the %s failed: %s", o.Resource, o.Error)
	}
	where := "in every namespace"
	if o.Namespace != "" {
		where = fmt.Sprintf("in namespace %q", o.Namespace)
	}
	if len(o.Names) == 0 {
		return noObjectsText(o) + "."
	}
	if o.Selector == "" && len(o.Names) == 1 {
		return fmt.Sprintf("the request names %s %s %s.", o.Resource, o.Names[0], where)
	}
	how := fmt.Sprintf("the label selector %q selects", o.Selector)
	if o.Selector == "" {
		how = "the request covers"
	}
	return fmt.Sprintf("%s %d %s %s: %s.", how, len(o.Names), o.Resource, where, listed(o.Names, 20))
}

func sentText(q Query) string {
	to := fmt.Sprintf("sent to backend %q at %s", q.Backend, q.URL)
	if q.Plan != "" {
		to = fmt.Sprintf("planned %s, %s", q.Plan, to)
	}
	if q.Error != "" {
		return fmt.Sprintf("%s; it failed (%s): %s", to, q.Cause, q.Error)
	}
	how := map[string]string{
		"backend":   "answered by the backend",
		"cache":     "answered from the adapter's query cache (--query-cache-period)",
		"in-flight": "answered by an identical query already on its way",
		"stale":     "the backend failed; answered with its last good answer (--serve-stale-for)",
	}[q.Answered]
	if how == "" {
		how = "answered"
	}
	if q.Time != nil {
		how += ", evaluated at " + q.Time.UTC().Format(time.RFC3339Nano)
	}
	return to + ", " + how + ":"
}

func answerText(q Query) string {
	shown := len(q.Samples) + q.Omitted
	others := ""
	if q.Others > 0 {
		others = fmt.Sprintf(" (%d for other objects, not shown)", q.Others)
	}
	if shown == 0 {
		return fmt.Sprintf("no sample for what the request covers, of %d in the answer%s; %s.", q.Total, others, lookbackText(q))
	}
	text := fmt.Sprintf("%d sample(s) for what the request covers, of %d in the answer%s", shown, q.Total, others)
	if q.Omitted > 0 {
		text += fmt.Sprintf("; the first %d:", len(q.Samples))
	} else {
		text += ":"
	}
	return text
}

// labelsText writes labels as PromQL does: {a="1", b="2"}, sorted.
func labelsText(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
