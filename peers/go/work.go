package main

// The work knob, as ctxlab's proto_work: touch mem bytes of a working set, one
// read-modify-write every stride bytes (0 = 64, a cache line), then burn cpu_us of the
// calling thread's CPU time (the thread CPU clock, so time spent descheduled does not count).

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

const defaultStride = 64

type workKnob struct {
	cpuUs, memBytes, strideBytes uint64
}

func (w workKnob) set() bool { return w.cpuUs != 0 || w.memBytes != 0 }

// Working sets are pooled: a goroutine takes one for the duration of a touch, so each
// running goroutine (at most GOMAXPROCS of them at once) has its own, like C's per thread.
var workSets = sync.Pool{New: func() interface{} { b := []byte(nil); return &b }}

const clockThreadCPUTimeID = 3 // CLOCK_THREAD_CPUTIME_ID

func threadCPUNs() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

var burnSink uint64

func burnCPU(us uint64) {
	if us == 0 {
		return
	}
	// Stay on one OS thread so its CPU clock measures this burn only.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	end := threadCPUNs() + int64(us)*1000
	x := burnSink
	for threadCPUNs() < end {
		for i := 0; i < 200; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	burnSink = x
}

func doWork(cpuUs, memBytes, strideBytes uint64) {
	if memBytes != 0 {
		p := workSets.Get().(*[]byte)
		if uint64(len(*p)) < memBytes {
			*p = make([]byte, memBytes)
		}
		b := *p
		stride := strideBytes
		if stride == 0 {
			stride = defaultStride
		}
		for off := uint64(0); off < memBytes; off += stride {
			b[off]++
		}
		workSets.Put(p)
	}
	burnCPU(cpuUs)
}

func (w workKnob) run() { doWork(w.cpuUs, w.memBytes, w.strideBytes) }

// parseSize reads bytes with an optional binary suffix (k K KB KiB m M MB MiB g G GB GiB),
// as ctxlab's http /work query does.
func parseSize(s string) (uint64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("not a number")
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, errors.New("too large")
	}
	var mult uint64
	switch s[i:] {
	case "", "b", "B":
		mult = 1
	case "k", "K", "kb", "KB", "kB", "KiB":
		mult = 1 << 10
	case "m", "M", "mb", "MB", "MiB":
		mult = 1 << 20
	case "g", "G", "gb", "GB", "GiB":
		mult = 1 << 30
	default:
		return 0, errors.New("unknown unit '" + s[i:] + "'")
	}
	if n > ^uint64(0)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// sizeFlag is a flag.Value for a byte size.
type sizeFlag struct{ v *uint64 }

func (f sizeFlag) String() string {
	if f.v == nil {
		return "0"
	}
	return strconv.FormatUint(*f.v, 10)
}

func (f sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return errors.New("bad size '" + s + "': " + err.Error() + " (e.g. 4096, 64k, 1M)")
	}
	*f.v = n
	return nil
}
