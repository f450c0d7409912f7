package planner

import (
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"
)

// Fixed parts of the cache's memory estimate, in bytes, on top of the lengths of the key
// and of every label name and value. They approximate the Go structures involved on a
// 64-bit platform; the estimate is a bound for operators, not an exact accounting.
const (
	// entryOverheadBytes: the entry struct, its map slot, the Result and the key's headers.
	entryOverheadBytes = 192
	// sampleOverheadBytes: the *Sample in the vector, the Sample struct and its Metric map header.
	sampleOverheadBytes = 96
	// labelOverheadBytes: a label's name and value string headers and its share of map buckets.
	labelOverheadBytes = 48
	// histogramOverheadBytes and histogramBucketBytes: a native histogram sample's parts.
	histogramOverheadBytes = 56
	histogramBucketBytes   = 40
)

// entry is one cached result, a node of the lru list.
type entry struct {
	key     cacheKey
	res     *Result
	expires time.Time // the result is served only before this instant
	bytes   int64     // estimated memory, see resultBytes
	prev    *entry    // towards the most recently used end
	next    *entry    // towards the least recently used end

	// Used by the last-good store only (see stale.go): when the key's queries started
	// failing with the backend down (zero while they succeed), and whether that outage has
	// been logged for this key.
	failingSince time.Time
	logged       bool
}

// lru holds cached results under a bound on their estimated bytes, evicting the least
// recently used first. It is not safe for concurrent use: Planner.mu guards it.
type lru struct {
	entries  map[cacheKey]*entry
	root     entry // sentinel: root.next is the most recently used entry, root.prev the least
	bytes    int64
	maxBytes int64
	gauge    *metrics.Gauge // shared by all planners: only Add to it
}

func (c *lru) init(maxBytes int64, gauge *metrics.Gauge) {
	c.entries = make(map[cacheKey]*entry)
	c.root.next, c.root.prev = &c.root, &c.root
	c.maxBytes = maxBytes
	c.gauge = gauge
}

// get returns the result cached for k if it is still valid at now, and marks it used.
// An expired entry is dropped.
func (c *lru) get(k cacheKey, now time.Time) *Result {
	if e := c.lookup(k, now); e != nil {
		return e.res
	}
	return nil
}

// lookup returns k's entry if it is still valid at now, and marks it used. An expired entry
// is dropped.
func (c *lru) lookup(k cacheKey, now time.Time) *entry {
	e := c.entries[k]
	if e == nil {
		return nil
	}
	if !now.Before(e.expires) {
		c.remove(e)
		return nil
	}
	if c.root.next != e {
		c.unlink(e)
		c.pushFront(e)
	}
	return e
}

// add caches res for k until expires. It keeps an entry that expires later, skips results
// already expired at now or larger than the whole bound, and evicts expired entries from the
// least recently used end and then least recently used ones until the new entry fits.
// It returns the result's estimated size when that alone exceeds the bound (0 otherwise),
// for the caller to report: such a result is never cached.
func (c *lru) add(k cacheKey, res *Result, expires, now time.Time) (tooLarge int64) {
	if !now.Before(expires) {
		return 0
	}
	if old := c.entries[k]; old != nil {
		if !expires.After(old.expires) {
			return 0
		}
		c.remove(old)
	}
	size := resultBytes(k, res)
	if size > c.maxBytes {
		return size
	}
	for tail := c.root.prev; tail != &c.root && !now.Before(tail.expires); tail = c.root.prev {
		c.remove(tail)
	}
	for c.bytes+size > c.maxBytes {
		c.remove(c.root.prev)
	}
	e := &entry{key: k, res: res, expires: expires, bytes: size}
	c.entries[k] = e
	c.pushFront(e)
	c.bytes += size
	c.gauge.Add(float64(size))
	return 0
}

func (c *lru) remove(e *entry) {
	c.unlink(e)
	delete(c.entries, e.key)
	c.bytes -= e.bytes
	c.gauge.Add(-float64(e.bytes))
}

func (c *lru) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (c *lru) pushFront(e *entry) {
	e.prev = &c.root
	e.next = c.root.next
	c.root.next.prev = e
	c.root.next = e
}

// resultBytes estimates the memory a cached result holds: the key, every label name and
// value, and the fixed overheads above.
func resultBytes(k cacheKey, res *Result) int64 {
	n := int64(entryOverheadBytes + len(k.backend) + len(k.query))
	for _, s := range res.Vector {
		n += sampleOverheadBytes
		for name, value := range s.Metric {
			n += int64(labelOverheadBytes + len(name) + len(value))
		}
		if s.Histogram != nil {
			n += int64(histogramOverheadBytes + histogramBucketBytes*len(s.Histogram.Buckets))
		}
	}
	return n
}

// remember stores a successful result in the cache and, while stale answers are enabled, as
// the key's last good result. Called with p.mu held.
func (p *Planner) remember(k cacheKey, r Request, res *Result, started, now time.Time) {
	if r.Uncached {
		return
	}
	var tooLarge int64
	if p.period > 0 {
		tooLarge = p.cache.add(k, res, started.Add(p.period), now)
	}
	if p.staleFor > 0 {
		tooLarge = max(tooLarge, p.rememberLastGood(k, res, started, now))
	}
	if tooLarge == 0 {
		return
	}
	p.m.tooLargeResults.WithLabelValues(ruleLabel(r.Rule)).Inc()
	if !p.tooLargeLogged[r.Rule] {
		p.tooLargeLogged[r.Rule] = true
		klog.V(2).InfoS("A query result is larger than the whole cache and is never cached; raise --query-cache-max-bytes to cache it",
			"backend", r.Backend.Name, "rule", r.Rule, "resultBytes", tooLarge, "limitBytes", p.cache.maxBytes)
	}
}
