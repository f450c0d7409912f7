package explain

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// Target is one request to explain: its API path (with query) and, for people, who asks it.
type Target struct {
	Title string
	Path  string
}

// whatKind tells the three forms of the arguments apart.
type whatKind int

const (
	askPath    whatKind = iota // an API path
	askKubectl                 // kubectl top pods|nodes ...
	askHPA                     // hpa/NAME
)

// classify tells which form args are in; hpa is the HPA's name for askHPA.
func classify(args []string) (kind whatKind, hpa string, err error) {
	switch {
	case len(args) == 0:
		return 0, "", fmt.Errorf("say what to explain: an API path, `kubectl top pods|nodes ...`, or hpa/NAME")
	case len(args) == 1 && strings.HasPrefix(args[0], "/"):
		return askPath, "", nil
	case args[0] == "kubectl" || args[0] == "top" || strings.HasPrefix(args[0], "kubectl ") || strings.HasPrefix(args[0], "top "):
		return askKubectl, "", nil
	}
	resource, name, ok := strings.Cut(args[0], "/")
	if !ok && len(args) == 2 {
		resource, name, ok = args[0], args[1], true
	} else if len(args) > 1 {
		ok = false
	}
	switch strings.ToLower(resource) {
	case "hpa", "horizontalpodautoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler.autoscaling", "horizontalpodautoscalers.autoscaling":
		if ok && name != "" {
			return askHPA, name, nil
		}
	}
	return 0, "", fmt.Errorf("cannot tell what %q asks: give an API path (/apis/custom.metrics.k8s.io/v1beta2/namespaces/NS/pods/*/METRIC?labelSelector=...), "+
		"a kubectl top command (kubectl top pods -n NS), or an HPA (hpa/NAME, with -n NS)", strings.Join(args, " "))
}

// kubectlTop turns a `kubectl top pods|nodes` command line into the request kubectl sends.
// namespace is the one kubectl would use when the command has no -n (the kubeconfig's).
func kubectlTop(args []string, namespace string) (Target, error) {
	words := args
	if len(args) == 1 {
		var err error
		if words, err = shellWords(args[0]); err != nil {
			return Target{}, err
		}
	}
	if len(words) > 0 && words[0] == "kubectl" {
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "top" {
		return Target{}, fmt.Errorf("%q is not a kubectl top command: write kubectl top pods|nodes [NAME] [-n NS | -A] [-l SELECTOR]", strings.Join(args, " "))
	}
	fs := pflag.NewFlagSet("kubectl top", pflag.ContinueOnError)
	fs.SetOutput(nopWriter{})
	ns := fs.StringP("namespace", "n", namespace, "")
	all := fs.BoolP("all-namespaces", "A", false, "")
	selector := fs.StringP("selector", "l", "", "")
	fieldSelector := fs.String("field-selector", "", "")
	// Flags that change only how kubectl shows the answer, not what it asks.
	fs.Bool("containers", false, "")
	fs.Bool("no-headers", false, "")
	fs.Bool("sum", false, "")
	fs.Bool("show-capacity", false, "")
	fs.Bool("use-protocol-buffers", false, "")
	fs.String("sort-by", "", "")
	if err := fs.Parse(words[1:]); err != nil {
		return Target{}, fmt.Errorf("kubectl top: %w", err)
	}
	rest := fs.Args()
	if len(rest) == 0 || len(rest) > 2 {
		return Target{}, fmt.Errorf("kubectl top needs pods or nodes, and at most one name")
	}
	if _, err := labels.Parse(*selector); err != nil {
		return Target{}, fmt.Errorf("kubectl top -l %q: %w", *selector, err)
	}
	if _, err := fields.ParseSelector(*fieldSelector); err != nil {
		return Target{}, fmt.Errorf("kubectl top --field-selector %q: %w", *fieldSelector, err)
	}
	name := ""
	if len(rest) == 2 {
		name = rest[1]
	}
	q := url.Values{}
	if *selector != "" {
		q.Set("labelSelector", *selector)
	}
	if *fieldSelector != "" {
		q.Set("fieldSelector", *fieldSelector)
	}
	var path string
	switch rest[0] {
	case "pod", "pods", "po":
		switch {
		case *all && name != "":
			return Target{}, fmt.Errorf("kubectl top pods: a pod name needs a namespace, not -A")
		case *all:
			path = "/apis/metrics.k8s.io/v1beta1/pods"
		case *ns == "":
			return Target{}, fmt.Errorf("kubectl top pods: say the namespace (-n NS) or -A")
		default:
			path = "/apis/metrics.k8s.io/v1beta1/namespaces/" + url.PathEscape(*ns) + "/pods"
		}
	case "node", "nodes", "no":
		path = "/apis/metrics.k8s.io/v1beta1/nodes"
	default:
		return Target{}, fmt.Errorf("kubectl top %s: only pods and nodes have resource metrics", rest[0])
	}
	if name != "" {
		path += "/" + url.PathEscape(name)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return Target{Title: "kubectl " + strings.Join(words, " "), Path: path}, nil
}

// shellWords splits a command line given as one argument as a shell would: at blanks, except
// inside single or double quotes.
func shellWords(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: a quote is not closed", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
