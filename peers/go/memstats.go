package main

// The runtime's own allocation counters for `ctxlab run` with [experiment] alloc: the peer is
// statically linked, so libctxlab-alloc.so cannot count its allocations; when
// CTXLAB_GO_MEMSTATS=PATH is set, the peer writes, every 50 ms, one line to PATH (replaced
// atomically: PATH.tmp then rename):
//
//	NS OBJECTS BYTES
//
// NS = time.Now() in Unix nanoseconds when read; OBJECTS = heap allocations since start
// (runtime/metrics /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects, i.e.
// MemStats.Mallocs, what `go test -benchmem` reports as allocs/op); BYTES =
// /gc/heap/allocs:bytes (MemStats.TotalAlloc, B/op). Reading these does not stop the world.
// The runner divides the differences of two lines by the time between their NS.

import (
	"fmt"
	"os"
	"runtime/metrics"
	"time"
)

func startMemstats() {
	path := os.Getenv("CTXLAB_GO_MEMSTATS")
	if path == "" {
		return
	}
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:objects"},
		{Name: "/gc/heap/tiny/allocs:objects"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	write := func() {
		metrics.Read(s)
		var v [3]uint64
		for i := range s {
			if s[i].Value.Kind() == metrics.KindUint64 {
				v[i] = s[i].Value.Uint64()
			}
		}
		line := fmt.Sprintf("%d %d %d\n", time.Now().UnixNano(), v[0]+v[1], v[2])
		tmp := path + ".tmp"
		if os.WriteFile(tmp, []byte(line), 0o644) == nil {
			os.Rename(tmp, path)
		}
	}
	write()
	go func() {
		for range time.Tick(50 * time.Millisecond) {
			write()
		}
	}()
}
