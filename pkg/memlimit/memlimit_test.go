package memlimit

import (
	"runtime/debug"
	"testing"
	"testing/fstest"
)

func TestFind(t *testing.T) {
	const v1Proc = "12:memory:/kubepods/pod1/c1\n11:cpu,cpuacct:/kubepods/pod1/c1\n0::/\n"
	tests := []struct {
		name      string
		files     map[string]string
		wantBytes int64
		wantFile  string
		wantOK    bool
		wantErr   bool
	}{
		{
			name:      "cgroup v2 in the container's own namespace",
			files:     map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "402653184\n"},
			wantBytes: 402653184, wantFile: "/sys/fs/cgroup/memory.max", wantOK: true,
		},
		{
			name:      "cgroup v2 seen from the host",
			files:     map[string]string{"proc/self/cgroup": "0::/kubepods.slice/pod1\n", "sys/fs/cgroup/kubepods.slice/pod1/memory.max": "268435456\n", "sys/fs/cgroup/memory.max": "max\n"},
			wantBytes: 268435456, wantFile: "/sys/fs/cgroup/kubepods.slice/pod1/memory.max", wantOK: true,
		},
		{
			name:  "cgroup v2 without a limit",
			files: map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "max\n"},
		},
		{
			name:      "cgroup v1 memory controller",
			files:     map[string]string{"proc/self/cgroup": v1Proc, "sys/fs/cgroup/memory/kubepods/pod1/c1/memory.limit_in_bytes": "536870912\n"},
			wantBytes: 536870912, wantFile: "/sys/fs/cgroup/memory/kubepods/pod1/c1/memory.limit_in_bytes", wantOK: true,
		},
		{
			name:  "cgroup v1 unlimited (page-rounded LONG_MAX)",
			files: map[string]string{"proc/self/cgroup": v1Proc, "sys/fs/cgroup/memory/kubepods/pod1/c1/memory.limit_in_bytes": "9223372036854771712\n"},
		},
		{
			name:  "no cgroup file at all",
			files: map[string]string{},
		},
		{
			name:    "an unreadable limit is an error, not a guess",
			files:   map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "lots\n"},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			limit, ok, err := Find(fsys)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Find error = %v, want error %v", err, tt.wantErr)
			}
			if ok != tt.wantOK || limit.Bytes != tt.wantBytes || limit.File != tt.wantFile {
				t.Errorf("Find = %+v, %v; want {Bytes:%d File:%s}, %v", limit, ok, tt.wantBytes, tt.wantFile, tt.wantOK)
			}
		})
	}
}

func TestApply(t *testing.T) {
	previous := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(previous) })
	t.Setenv("GOMEMLIMIT", "")
	fsys := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("400000000\n")},
	}
	got, err := Apply(fsys, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Set || got.Bytes != 360000000 || got.Container.Bytes != 400000000 {
		t.Errorf("Apply = %+v, want 360000000 bytes set from 400000000", got)
	}
	if now := debug.SetMemoryLimit(-1); now != 360000000 {
		t.Errorf("the runtime's limit is %d, want 360000000", now)
	}

	debug.SetMemoryLimit(previous)
	if got, err := Apply(fsys, 0); err != nil || got.Set {
		t.Errorf("Apply with ratio 0 = %+v, %v; want nothing set", got, err)
	}
	t.Setenv("GOMEMLIMIT", "200MiB")
	if got, err := Apply(fsys, 0.9); err != nil || got.Set {
		t.Errorf("Apply with GOMEMLIMIT set = %+v, %v; want nothing set", got, err)
	}
	if _, err := Apply(fsys, 1.5); err == nil {
		t.Error("Apply with ratio 1.5 succeeded, want an error naming the flag")
	}
}
