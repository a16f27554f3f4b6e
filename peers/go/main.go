// ctxlab-peer-go: the Go comparator for ctxlab. A goroutine per connection server speaking
// ctxlab's four protocols (sink, echo, http, chat) with the same bytes on the wire.
//
//	ctxlab-peer-go -listen 127.0.0.1:0 -proto echo
//
// On ready it prints exactly one line to stdout:
//
//	listening on HOST:PORT engine=go proto=P pid=PID
//
// SIGINT/SIGTERM stop accepting and exit 0. GOMAXPROCS is left to the environment.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

const readSize = 16 * 1024

type config struct {
	listen    string
	proto     string
	work      workKnob
	maxOutbuf uint64
	maxLine   int
}

func main() {
	cfg := config{maxOutbuf: 1 << 20, maxLine: 64 * 1024}
	fs := flag.NewFlagSet("ctxlab-peer-go", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:7000", "HOST:PORT to listen on (port 0 = ephemeral)")
	fs.StringVar(&cfg.proto, "proto", "sink", "protocol: sink|echo|http|chat")
	fs.Uint64Var(&cfg.work.cpuUs, "work-cpu-us", 0, "CPU microseconds burnt per message (line; http: request)")
	fs.Var(sizeFlag{&cfg.work.memBytes}, "work-mem", "bytes of working set touched per message (e.g. 64k)")
	fs.Var(sizeFlag{&cfg.work.strideBytes}, "work-stride", "stride of the working-set touch in bytes (default 64)")
	fs.Var(sizeFlag{&cfg.maxOutbuf}, "max-outbuf", "chat: per-client output queue bound in bytes (slow reader)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ctxlab-peer-go: unexpected argument '%s' (options only, see -h)\n", fs.Arg(0))
		os.Exit(2)
	}
	switch cfg.proto {
	case "sink", "echo", "http", "chat":
	default:
		fmt.Fprintf(os.Stderr, "ctxlab-peer-go: unknown protocol '%s' (use sink, echo, http or chat)\n", cfg.proto)
		os.Exit(2)
	}
	if cfg.maxOutbuf == 0 {
		fmt.Fprintf(os.Stderr, "ctxlab-peer-go: -max-outbuf must be at least 1 byte\n")
		os.Exit(2)
	}

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ctxlab-peer-go: cannot listen on '%s': %v (pick a free port, or port 0)\n", cfg.listen, err)
		os.Exit(1)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	var stopping atomic.Bool
	go func() {
		<-sigs
		stopping.Store(true)
		ln.Close()
		os.Exit(0)
	}()

	startMemstats()
	// os.Stdout is unbuffered: the line is out when Printf returns.
	fmt.Printf("listening on %s engine=go proto=%s pid=%d\n", ln.Addr().String(), cfg.proto, os.Getpid())

	switch cfg.proto {
	case "http":
		srv := &http.Server{Handler: &httpHandler{work: cfg.work}}
		err = srv.Serve(ln)
	default:
		err = serveRaw(ln, &cfg)
	}
	if stopping.Load() {
		select {} // the signal handler is exiting with 0
	}
	fmt.Fprintf(os.Stderr, "ctxlab-peer-go: stopped serving: %v\n", err)
	os.Exit(1)
}

func serveRaw(ln net.Listener, cfg *config) error {
	var chat *chatServer
	if cfg.proto == "chat" {
		chat = newChatServer(cfg)
	}
	var nextID uint64 = 1 // per server, in accept order
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return err
		}
		id := nextID
		nextID++
		switch cfg.proto {
		case "sink":
			go serveSink(c, cfg.work)
		case "echo":
			go serveEcho(c, cfg.work)
		case "chat":
			go chat.serve(c, id)
		}
	}
}

// serveSink reads and discards; with a work knob set, runs it once per newline.
func serveSink(c net.Conn, w workKnob) {
	defer c.Close()
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		if n > 0 && w.set() {
			for i := bytes.Count(buf[:n], []byte{'\n'}); i > 0; i-- {
				w.run()
			}
		}
		if err != nil {
			return
		}
	}
}

// serveEcho writes back every byte read; with a work knob set, runs it once per newline.
func serveEcho(c net.Conn, w workKnob) {
	defer c.Close()
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if w.set() {
				for i := bytes.Count(buf[:n], []byte{'\n'}); i > 0; i-- {
					w.run()
				}
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
