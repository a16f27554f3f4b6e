package main

// http: GET / -> "hello, world\n"; GET /work?cpu_us=N&mem=SIZE&stride=S burns and touches,
// then "ok\n"; other paths 404; methods other than GET and HEAD 405. Same bodies, limits and
// 400 messages as ctxlab's proto/http.c. The configured work knob runs once per request.

import (
	"net/http"
	"strconv"
	"strings"
)

const (
	maxWorkCPUUs = 10000000 // 10 s
	maxWorkBytes = 1 << 30
)

type httpHandler struct {
	work workKnob
}

func reply(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write([]byte(body)) // discarded by net/http for HEAD
}

func (hh *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hh.work.set() {
		hh.work.run()
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		reply(w, http.StatusMethodNotAllowed, "method not allowed: use GET or HEAD\n")
		return
	}
	switch r.URL.Path {
	case "/":
		reply(w, http.StatusOK, "hello, world\n")
	case "/work":
		cpuUs, mem, stride, bad := parseWorkQuery(r.URL.RawQuery)
		if bad != "" {
			reply(w, http.StatusBadRequest, bad)
			return
		}
		doWork(cpuUs, mem, stride)
		reply(w, http.StatusOK, "ok\n")
	default:
		reply(w, http.StatusNotFound, "not found: try GET / or GET /work?cpu_us=N&mem=SIZE&stride=S\n")
	}
}

// parseWorkQuery reads cpu_us, mem and stride; unknown keys are ignored.
func parseWorkQuery(q string) (cpuUs, mem, stride uint64, bad string) {
	for _, kv := range strings.Split(q, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "cpu_us":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n > maxWorkCPUUs || v == "" || v[0] == '+' {
				return 0, 0, 0, "bad cpu_us: use a number of microseconds up to 10000000, e.g. cpu_us=100\n"
			}
			cpuUs = n
		case "mem":
			n, err := parseSize(v)
			if err != nil || n > maxWorkBytes {
				return 0, 0, 0, "bad mem: use a size up to 1GiB, e.g. mem=64k\n"
			}
			mem = n
		case "stride":
			n, err := parseSize(v)
			if err != nil || n == 0 || n > maxWorkBytes {
				return 0, 0, 0, "bad stride: use a size from 1 to 1GiB, e.g. stride=64\n"
			}
			stride = n
		}
	}
	return cpuUs, mem, stride, ""
}
