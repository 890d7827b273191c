// The grpc-go side of the restart comparison (tests/clients/wait_for_ready_test.ts and the soak's
// restart case): Sum calls at a steady pace over one connection while the server restarts.
//
//	peer loop HOST:PORT INTERVAL_MS DEADLINE_MS WAIT_FOR_READY(0|1)
//
// starts a Sum([1, 2, 3]) every INTERVAL_MS, each with a deadline of DEADLINE_MS and, with
// WAIT_FOR_READY 1, grpc-go's WaitForReady(true), until stdin closes. It prints one JSON line
// per call once the call has ended, {"start": MS, "end": MS, "code": "OK", "details": ""}
// (epoch milliseconds), then {"attempts": [MS, ...]}: when each connection attempt began.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
)

type loopCall struct {
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	Code    string `json:"code"`
	Details string `json:"details"`
}

func epochMs() int64 {
	return time.Now().UnixNano() / int64(time.Millisecond)
}

func runLoop(address string, intervalMs, deadlineMs int, waitForReady bool) error {
	var mutex sync.Mutex
	attempts := []int64{}
	dialer := &net.Dialer{}
	conn, err := grpc.Dial(address, grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, target string) (net.Conn, error) {
			mutex.Lock()
			attempts = append(attempts, epochMs())
			mutex.Unlock()
			return dialer.DialContext(ctx, "tcp", target)
		}))
	if err != nil {
		return err
	}
	defer conn.Close()
	output := json.NewEncoder(os.Stdout)
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(stop)
	}()
	var calls sync.WaitGroup
	ticker := time.NewTicker(time.Duration(intervalMs) * time.Millisecond)
	defer ticker.Stop()
	for running := true; running; {
		select {
		case <-stop:
			running = false
		case <-ticker.C:
			calls.Add(1)
			go func() {
				defer calls.Done()
				start := epochMs()
				ctx, cancel := context.WithTimeout(context.Background(),
					time.Duration(deadlineMs)*time.Millisecond)
				defer cancel()
				r := sumOnce(ctx, conn, waitForReady)
				mutex.Lock()
				output.Encode(loopCall{start, epochMs(), r.Code, r.Details})
				mutex.Unlock()
			}()
		}
	}
	calls.Wait()
	mutex.Lock()
	defer mutex.Unlock()
	return output.Encode(map[string][]int64{"attempts": attempts})
}

func sumOnce(ctx context.Context, conn *grpc.ClientConn, waitForReady bool) result {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true},
		"/stream.ClientStream/Sum", grpc.WaitForReady(waitForReady))
	if err != nil {
		return finish(nil, err)
	}
	for _, value := range []int64{1, 2, 3} {
		if err := stream.SendMsg(&int64Message{value}); err != nil {
			break // the status comes from RecvMsg
		}
	}
	stream.CloseSend()
	var reply int64Message
	if err := stream.RecvMsg(&reply); err != nil {
		return finish(nil, err)
	}
	return finish([]string{strconv.FormatInt(reply.value, 10)}, nil)
}

func parseLoopArgs(args []string) (string, int, int, bool, error) {
	if len(args) != 4 {
		return "", 0, 0, false, fmt.Errorf("loop needs HOST:PORT INTERVAL_MS DEADLINE_MS WAIT_FOR_READY")
	}
	interval, err := strconv.Atoi(args[1])
	if err != nil || interval < 1 {
		return "", 0, 0, false, fmt.Errorf("bad INTERVAL_MS: %q", args[1])
	}
	deadline, err := strconv.Atoi(args[2])
	if err != nil || deadline < 1 {
		return "", 0, 0, false, fmt.Errorf("bad DEADLINE_MS: %q", args[2])
	}
	return args[0], interval, deadline, args[3] == "1", nil
}
