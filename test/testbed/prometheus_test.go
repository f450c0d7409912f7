package testbed

import (
	"testing"
	"time"
)

func TestPrometheusConfig(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		targets  []string
		want     string
	}{
		{
			name:     "without targets nothing is scraped",
			interval: time.Second,
			want: `global:
    scrape_interval: 1000ms
    scrape_timeout: 1000ms
    evaluation_interval: 1000ms
`,
		},
		{
			name:     "targets are scraped under the live job at the interval",
			interval: 1500 * time.Millisecond,
			targets:  []string{"127.0.0.1:9100", "localhost:8080"},
			want: `global:
    scrape_interval: 1500ms
    scrape_timeout: 1500ms
    evaluation_interval: 1500ms
scrape_configs:
    - job_name: live
      static_configs:
        - targets:
            - 127.0.0.1:9100
            - localhost:8080
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := prometheusConfig(tc.interval, tc.targets)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("configuration:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
