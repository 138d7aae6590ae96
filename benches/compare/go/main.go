// The Go side of benches/compare: the same workloads as gostack's benchmarks, written the way a
// Go programmer would. Standard library only. One workload per invocation; each prints
// "raw<TAB>name<TAB>value" lines (one per repetition) that benches/compare/compare.py reads.
//
//	compare-go yield N REPS          runtime.Gosched between 2 goroutines, GOMAXPROCS=1, ns/switch
//	compare-go pingpong P N REPS     unbuffered channel round trip at GOMAXPROCS=P, ns/round trip
//	compare-go spawn N REPS          go f() + run + exit in batches of 1,000, GOMAXPROCS=1, ns each
//	compare-go spawnall N            N goroutines started at once, then all run (one repetition)
//	compare-go parked N              RSS+VmPTE growth per parked goroutine (one repetition)
//	compare-go grow BYTES            grow one goroutine's stack to BYTES, first run (one repetition)
//	compare-go growwarm BYTES REPS   same, repeated in one process
//	compare-go many N BYTES REPS     N goroutines each growing to BYTES, GOMAXPROCS=1, seconds
//	compare-go threadring P N        503 goroutines in a ring pass a token N times, ns per hop
//	compare-go xpingpong N           ping-pong between two goroutines locked to two OS threads
//	                                 (runtime.LockOSThread), GOMAXPROCS=2, ns per round trip
//	compare-go fanout P K SLICES     K CPU-bound goroutines (SLICES x ~1 ms, Gosched between),
//	                                 results collected on a channel, seconds
//	compare-go echo P CONNS ROUNDS REPS  TCP echo on loopback, GOMAXPROCS=P, round trips/s
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func raw(name string, v float64) { fmt.Printf("raw\t%s\t%.6f\n", name, v) }

func yieldPair(n int) float64 {
	var wg sync.WaitGroup
	wg.Add(2)
	start := make(chan struct{})
	for i := 0; i < 2; i++ {
		go func() {
			<-start
			for j := 0; j < n; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	t := time.Now()
	close(start)
	wg.Wait()
	return float64(time.Since(t).Nanoseconds()) / float64(2*n)
}

func pingpong(n int) float64 {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	t := time.Now()
	v := 0
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	d := time.Since(t)
	if v != n {
		panic("ping-pong lost a message")
	}
	return float64(d.Nanoseconds()) / float64(n)
}

func spawnBatches(n int) float64 {
	var wg sync.WaitGroup
	t := time.Now()
	for i := 0; i < n; i += 1000 {
		wg.Add(1000)
		for j := 0; j < 1000; j++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	return float64(time.Since(t).Nanoseconds()) / float64(n)
}

func spawnAll(n int) float64 {
	var wg sync.WaitGroup
	wg.Add(n)
	t := time.Now()
	for j := 0; j < n; j++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return float64(time.Since(t).Nanoseconds()) / float64(n)
}

// statusKB reads a "Name: N kB" line of /proc/self/status.
func statusKB(name string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+":") {
			fields := strings.Fields(sc.Text())
			return float64(atoi(fields[1])) * 1024
		}
	}
	panic(name + " not found")
}

// parked: RSS + page tables growth per goroutine while n goroutines are blocked (as
// benches/c/bench_growth.c measures gostack's).
func parked(n int) float64 {
	before := statusKB("VmRSS") + statusKB("VmPTE")
	var wg sync.WaitGroup
	wg.Add(n)
	block := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			wg.Done()
			<-block
		}()
	}
	wg.Wait()
	after := statusKB("VmRSS") + statusKB("VmPTE")
	close(block)
	return (after - before) / float64(n)
}

// dig recurses through ~1 KiB frames (gostack's dig in bench_growth.c has a 1,000-byte pad).
//
//go:noinline
func dig(depth, levels int) int {
	var pad [1000]byte
	pad[depth%1000] = byte(depth)
	if depth < levels {
		return dig(depth+1, levels) + int(pad[(depth*7)%1000])
	}
	return int(pad[0])
}

var sink int

// levels for `bytes` of stack: Go's frame for dig is 1,000 bytes of pad plus ~40 of header.
func levelsFor(bytes int) int { return bytes / 1040 }

func growOnce(bytes int) float64 {
	done := make(chan float64)
	go func() {
		t := time.Now()
		sink += dig(0, levelsFor(bytes))
		done <- float64(time.Since(t).Nanoseconds())
	}()
	return <-done
}

func many(n, bytes int) float64 {
	var wg sync.WaitGroup
	wg.Add(n)
	levels := levelsFor(bytes)
	t := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			sink += dig(0, levels)
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(t).Seconds()
}

// threadring: the Benchmarks Game's thread-ring (the same as benches/compare/c/sched_bench.c).
func threadring(n int) float64 {
	const ring = 503
	chans := make([]chan int, ring)
	for i := range chans {
		chans[i] = make(chan int)
	}
	done := make(chan int)
	t := time.Now()
	for i := 0; i < ring; i++ {
		go func(id int, in, out chan int) {
			for {
				token := <-in
				if token == 0 {
					done <- id + 1
					return
				}
				out <- token - 1
			}
		}(i, chans[i], chans[(i+1)%ring])
	}
	chans[0] <- n
	who := <-done
	d := time.Since(t)
	if who != n%ring+1 {
		panic("thread-ring: wrong member ended")
	}
	return float64(d.Nanoseconds()) / float64(n)
}

// xpingpong: the partners are locked to two different OS threads (as gostack's are pinned to
// the threads they first ran on).
func xpingpong(n int) float64 {
	ping, pong := make(chan int), make(chan int)
	go func() {
		runtime.LockOSThread()
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := time.Now()
	v := 0
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	d := time.Since(t)
	if v != n {
		panic("ping-pong lost a message")
	}
	return float64(d.Nanoseconds()) / float64(n)
}

var fanSink uint64

func fanout(k, slices int) float64 {
	results := make(chan uint64)
	t := time.Now()
	for i := 0; i < k; i++ {
		go func(x uint64) {
			for s := 0; s < slices; s++ {
				for j := 0; j < 800000; j++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
				runtime.Gosched()
			}
			results <- x
		}(uint64(i) + 1)
	}
	var sum uint64
	for i := 0; i < k; i++ {
		sum += <-results
	}
	fanSink = sum
	return time.Since(t).Seconds()
}

func main() {
	a := os.Args[1:]
	if len(a) == 0 {
		fmt.Fprintln(os.Stderr, "usage: see the comment at the top of main.go")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	switch a[0] {
	case "yield":
		for r := 0; r < atoi(a[2]); r++ {
			raw("yield", yieldPair(atoi(a[1])))
		}
	case "pingpong":
		runtime.GOMAXPROCS(atoi(a[1]))
		for r := 0; r < atoi(a[3]); r++ {
			raw("pingpong P="+a[1], pingpong(atoi(a[2])))
		}
	case "spawn":
		for r := 0; r < atoi(a[2]); r++ {
			raw("spawn", spawnBatches(atoi(a[1])))
		}
	case "spawnall":
		raw("spawnall", spawnAll(atoi(a[1])))
	case "parked":
		raw("parked", parked(atoi(a[1])))
	case "grow":
		raw("grow "+a[1], growOnce(atoi(a[1]))/1e6)
	case "growwarm":
		for r := 0; r < atoi(a[2]); r++ {
			raw("growwarm "+a[1], growOnce(atoi(a[1]))/1e6)
		}
	case "many":
		for r := 0; r < atoi(a[3]); r++ {
			raw("many", many(atoi(a[1]), atoi(a[2])))
		}
	case "threadring":
		runtime.GOMAXPROCS(atoi(a[1]))
		raw("threadring P="+a[1], threadring(atoi(a[2])))
	case "xpingpong":
		runtime.GOMAXPROCS(2)
		raw("xpingpong P=2", xpingpong(atoi(a[1])))
	case "fanout":
		runtime.GOMAXPROCS(atoi(a[1]))
		raw("fanout P="+a[1], fanout(atoi(a[2]), atoi(a[3])))
	case "echo":
		runtime.GOMAXPROCS(atoi(a[1]))
		for r := 0; r < atoi(a[4]); r++ {
			raw("echo P="+a[1], echo(atoi(a[2]), atoi(a[3])))
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown workload", a[0])
		os.Exit(2)
	}
}
