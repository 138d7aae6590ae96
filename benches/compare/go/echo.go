package main

// TCP echo over loopback (issue #13), the way a Go programmer writes it: net.Listen, a goroutine
// per accepted connection doing io.Copy-style read/write, CONNS client goroutines each making
// ROUNDS round trips of 64 bytes. Returns round trips per second.

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

func echo(conns, rounds int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for i := 0; i < conns; i++ {
			c, err := ln.Accept()
			if err != nil {
				panic(err)
			}
			go func(c net.Conn) {
				buf := make([]byte, 256)
				for {
					n, err := c.Read(buf)
					if err != nil {
						break
					}
					if _, err := c.Write(buf[:n]); err != nil {
						break
					}
				}
				c.Close()
			}(c)
		}
	}()
	addr := ln.Addr().String()
	var wg sync.WaitGroup
	wg.Add(conns)
	t := time.Now()
	for i := 0; i < conns; i++ {
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			out := bytes.Repeat([]byte{'e'}, 64)
			in := make([]byte, 64)
			for r := 0; r < rounds; r++ {
				if _, err := c.Write(out); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					panic(err)
				}
				if !bytes.Equal(in, out) {
					panic("wrong reply")
				}
			}
			c.Close()
		}()
	}
	wg.Wait()
	rate := float64(conns*rounds) / time.Since(t).Seconds()
	ln.Close()
	return rate
}
