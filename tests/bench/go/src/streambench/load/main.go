// Command load drives a server of the article's three services with grpc-go, checking every
// answer, and prints one JSON line with what it measured. The benchmark runs the same load
// against every server it compares.
//
//	load stream pow|sum|sqrt HOST:PORT -count N [-limit SECONDS]
//	    one call moving N messages: Pow(1, count N), a Sum of 0 … N-1, a Sqrt of 0 … N-1
//	    written while the answers are read
//	load short pow|sum|sqrt HOST:PORT -inflight K -connections C -seconds S [-messages M]
//	    short calls back to back from K workers over C connections for S seconds: Pow(2)
//	    (M replies), a Sum of M numbers, a Sqrt of M numbers (M is 10 unless given);
//	    calls/s and latency
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"

	"streambench/wire"
)

func fail(format string, values ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", values...)
	os.Exit(2)
}

func dial(address string) *grpc.ClientConn {
	conn, err := grpc.Dial(address, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithTimeout(10*time.Second))
	if err != nil {
		fail("Cannot connect to %s: %v", address, err)
	}
	return conn
}

func main() {
	if len(os.Args) < 4 {
		fail("Usage: load stream|short pow|sum|sqrt HOST:PORT [flags]")
	}
	mode, shape, address := os.Args[1], os.Args[2], os.Args[3]
	flags := flag.NewFlagSet("load", flag.ExitOnError)
	count := flags.Int("count", 200000, "messages of a stream run")
	limit := flags.Int("limit", 120, "seconds a stream run may take")
	inflight := flags.Int("inflight", 1, "calls in flight in a short run")
	connections := flags.Int("connections", 1, "connections of a short run")
	seconds := flags.Float64("seconds", 3, "length of a short run")
	messages := flags.Int("messages", 10, "messages of each short call")
	_ = flags.Parse(os.Args[4:])
	var result interface{}
	switch mode {
	case "stream":
		result = streamRun(shape, address, *count, time.Duration(*limit)*time.Second)
	case "short":
		result = shortRun(shape, address, *inflight, *connections,
			time.Duration(*seconds*float64(time.Second)), *messages)
	default:
		fail("Unknown mode: %s", mode)
	}
	line, _ := json.Marshal(result)
	fmt.Println(string(line))
}

// streamResult has the shape of the benchmark's ClientResult.
type streamResult struct {
	Expected  int     `json:"expected"`
	Completed int     `json:"completed"`
	Seconds   float64 `json:"seconds"`
	Rate      float64 `json:"rate"`
	OK        bool    `json:"ok"`
	Stalled   bool    `json:"stalled"`
	Error     string  `json:"error,omitempty"`
}

func streamRun(shape, address string, count int, limit time.Duration) streamResult {
	conn := dial(address)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	completed, err := 0, error(nil)
	switch shape {
	case "pow":
		completed, err = streamPow(ctx, conn, count)
	case "sum":
		completed, err = streamSum(ctx, conn, count)
	case "sqrt":
		completed, err = streamSqrt(ctx, conn, count)
	default:
		fail("Unknown shape: %s", shape)
	}
	elapsed := time.Since(start).Seconds()
	result := streamResult{Expected: count, Completed: completed, Seconds: elapsed,
		Rate: float64(completed) / elapsed}
	result.Stalled = ctx.Err() != nil
	if err != nil {
		result.Error = err.Error()
	}
	result.OK = err == nil && !result.Stalled && completed == count
	return result
}

func streamPow(ctx context.Context, conn *grpc.ClientConn, count int) (int, error) {
	stream, err := conn.NewStream(ctx, wire.PowStream, wire.PowMethod)
	if err != nil {
		return 0, err
	}
	if err := stream.SendMsg(&wire.PowRequest{Number: 1, Count: uint32(count)}); err != nil {
		return 0, err
	}
	if err := stream.CloseSend(); err != nil {
		return 0, err
	}
	reply := &wire.PowReply{}
	for completed := 0; ; completed++ {
		err := stream.RecvMsg(reply)
		if err == io.EOF {
			return completed, nil
		}
		if err != nil {
			return completed, err
		}
		if reply.Number != 1 {
			return completed, fmt.Errorf("Power %d is %d, not 1", completed, reply.Number)
		}
	}
}

func streamSum(ctx context.Context, conn *grpc.ClientConn, count int) (int, error) {
	stream, err := conn.NewStream(ctx, wire.SumStream, wire.SumMethod)
	if err != nil {
		return 0, err
	}
	request := &wire.SumRequest{}
	for i := 0; i < count; i++ {
		request.Number = int64(i)
		if err := stream.SendMsg(request); err != nil {
			return i, err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return count, err
	}
	reply := &wire.SumReply{}
	if err := stream.RecvMsg(reply); err != nil {
		return count, err
	}
	expected := int64(count) * int64(count-1) / 2
	if reply.Sum != expected {
		return count, fmt.Errorf("Sum is %d, not %d", reply.Sum, expected)
	}
	return count, nil
}

func streamSqrt(ctx context.Context, conn *grpc.ClientConn, count int) (int, error) {
	stream, err := conn.NewStream(ctx, wire.SqrtStream, wire.SqrtMethod)
	if err != nil {
		return 0, err
	}
	sendErr := make(chan error, 1)
	go func() {
		request := &wire.SqrtRequest{}
		for i := 0; i < count; i++ {
			request.Number = float64(i)
			if err := stream.SendMsg(request); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	reply := &wire.SqrtReply{}
	for completed := 0; ; completed++ {
		err := stream.RecvMsg(reply)
		if err == io.EOF {
			return completed, <-sendErr
		}
		if err != nil {
			return completed, err
		}
		if reply.Sqrt != math.Sqrt(float64(completed)) {
			return completed, fmt.Errorf("Answer %d is %v, not %v", completed, reply.Sqrt,
				math.Sqrt(float64(completed)))
		}
	}
}

// shortResult is what a short-call run measured.
type shortResult struct {
	Calls       int     `json:"calls"`
	Seconds     float64 `json:"seconds"`
	Rate        float64 `json:"rate"`
	P50Ms       float64 `json:"p50Ms"`
	P99Ms       float64 `json:"p99Ms"`
	OK          bool    `json:"ok"`
	Error       string  `json:"error,omitempty"`
	Inflight    int     `json:"inflight"`
	Connections int     `json:"connections"`
}

func shortCall(shape string, conn *grpc.ClientConn, seed, messages int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch shape {
	case "pow":
		stream, err := conn.NewStream(ctx, wire.PowStream, wire.PowMethod)
		if err != nil {
			return err
		}
		request := &wire.PowRequest{Number: 2}
		if messages != 10 {
			request.Count = uint32(messages)
		}
		if err := stream.SendMsg(request); err != nil {
			return err
		}
		if err := stream.CloseSend(); err != nil {
			return err
		}
		reply := &wire.PowReply{}
		for i := 0; ; i++ {
			err := stream.RecvMsg(reply)
			if err == io.EOF {
				if i != messages {
					return fmt.Errorf("Pow(2) gave %d powers, not %d", i, messages)
				}
				return nil
			}
			if err != nil {
				return err
			}
			if reply.Number != int64(1)<<i {
				return fmt.Errorf("Pow(2) power %d is %d", i, reply.Number)
			}
		}
	case "sum":
		stream, err := conn.NewStream(ctx, wire.SumStream, wire.SumMethod)
		if err != nil {
			return err
		}
		expected := int64(0)
		for i := 0; i < messages; i++ {
			number := int64(seed*messages + i)
			expected += number
			if err := stream.SendMsg(&wire.SumRequest{Number: number}); err != nil {
				return err
			}
		}
		if err := stream.CloseSend(); err != nil {
			return err
		}
		reply := &wire.SumReply{}
		if err := stream.RecvMsg(reply); err != nil {
			return err
		}
		if reply.Sum != expected {
			return fmt.Errorf("Sum is %d, not %d", reply.Sum, expected)
		}
		return nil
	case "sqrt":
		stream, err := conn.NewStream(ctx, wire.SqrtStream, wire.SqrtMethod)
		if err != nil {
			return err
		}
		for i := 0; i < messages; i++ {
			if err := stream.SendMsg(&wire.SqrtRequest{Number: float64(seed + i)}); err != nil {
				return err
			}
		}
		if err := stream.CloseSend(); err != nil {
			return err
		}
		reply := &wire.SqrtReply{}
		for i := 0; ; i++ {
			err := stream.RecvMsg(reply)
			if err == io.EOF {
				if i != messages {
					return fmt.Errorf("Sqrt gave %d answers, not %d", i, messages)
				}
				return nil
			}
			if err != nil {
				return err
			}
			if reply.Sqrt != math.Sqrt(float64(seed+i)) {
				return fmt.Errorf("Sqrt answer %d is %v", i, reply.Sqrt)
			}
		}
	}
	return fmt.Errorf("Unknown shape: %s", shape)
}

func shortRun(shape, address string, inflight, connections int, length time.Duration, messages int) shortResult {
	conns := make([]*grpc.ClientConn, connections)
	for i := range conns {
		conns[i] = dial(address)
		defer conns[i].Close()
	}
	// One call on each connection first, so connecting is not measured.
	for _, conn := range conns {
		if err := shortCall(shape, conn, 0, messages); err != nil {
			return shortResult{Error: err.Error(), Inflight: inflight, Connections: connections}
		}
	}
	var mutex sync.Mutex
	var latencies []float64
	var firstError error
	var group sync.WaitGroup
	start := time.Now()
	deadline := start.Add(length)
	for worker := 0; worker < inflight; worker++ {
		group.Add(1)
		go func(worker int) {
			defer group.Done()
			conn := conns[worker%connections]
			mine := make([]float64, 0, 1024)
			for call := 0; time.Now().Before(deadline); call++ {
				began := time.Now()
				if err := shortCall(shape, conn, (worker*7919+call)%100000, messages); err != nil {
					mutex.Lock()
					if firstError == nil {
						firstError = err
					}
					mutex.Unlock()
					break
				}
				mine = append(mine, float64(time.Since(began).Microseconds())/1000)
			}
			mutex.Lock()
			latencies = append(latencies, mine...)
			mutex.Unlock()
		}(worker)
	}
	group.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Float64s(latencies)
	result := shortResult{Calls: len(latencies), Seconds: elapsed,
		Rate: float64(len(latencies)) / elapsed, OK: firstError == nil && len(latencies) > 0,
		Inflight: inflight, Connections: connections}
	if len(latencies) > 0 {
		result.P50Ms = latencies[len(latencies)/2]
		result.P99Ms = latencies[len(latencies)*99/100]
	}
	if firstError != nil {
		result.Error = firstError.Error()
	}
	return result
}
