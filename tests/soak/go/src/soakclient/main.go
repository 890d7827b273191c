// Command soakclient loads a grpc-stream server with the three streaming kinds at once over a
// few connections, checks every answer, and counts the streams that stop answering.
//
// It is built in GOPATH mode against Debian's golang-google-grpc-dev, with a hand-written
// codec and method names, so it needs no generated code:
//
//	GOPATH=$PWD/tests/soak/go:/usr/share/gocode GO111MODULE=off go build soakclient
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// rawCodec passes protobuf bytes through unchanged; the messages are encoded by hand below.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func varintField(field int, value uint64) []byte {
	out := []byte{byte(field << 3)}
	return binary.AppendUvarint(out, value)
}

func doubleField(field int, value float64) []byte {
	out := []byte{byte(field<<3 | 1), 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint64(out[1:], math.Float64bits(value))
	return out
}

// firstVarint reads field 1 as a varint (int64), 0 when absent.
func firstVarint(data []byte) (int64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	if data[0] != 1<<3 {
		return 0, fmt.Errorf("unexpected tag %d", data[0])
	}
	value, n := binary.Uvarint(data[1:])
	if n <= 0 {
		return 0, errors.New("bad varint")
	}
	return int64(value), nil
}

// firstDouble reads field 1 as a double, 0 when absent.
func firstDouble(data []byte) (float64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	if data[0] != 1<<3|1 || len(data) < 9 {
		return 0, fmt.Errorf("unexpected double field % x", data)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(data[1:9])), nil
}

var (
	powDesc  = &grpc.StreamDesc{StreamName: "Pow", ServerStreams: true}
	sumDesc  = &grpc.StreamDesc{StreamName: "Sum", ClientStreams: true}
	sqrtDesc = &grpc.StreamDesc{StreamName: "Sqrt", ServerStreams: true, ClientStreams: true}
)

type counters struct {
	calls   [3]int64
	failed  int64
	wrong   int64
	stalled int64
}

var kinds = [3]string{"pow", "sum", "sqrt"}

// stallAfter is how long a stream may go without the answer it waits for.
var stallAfter time.Duration

func doPow(ctx context.Context, cc *grpc.ClientConn, rng *rand.Rand, c *counters) error {
	count := 1 + rng.Intn(2000)
	request := append(varintField(1, 1), varintField(2, uint64(count))...)
	stream, err := cc.NewStream(ctx, powDesc, "/stream.ServerStream/Pow", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	if err := stream.SendMsg(&request); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for i := 0; ; i++ {
		var reply []byte
		err := stream.RecvMsg(&reply)
		if err == io.EOF {
			if i != count {
				atomic.AddInt64(&c.wrong, 1)
				return fmt.Errorf("pow: %d of %d powers", i, count)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if value, err := firstVarint(reply); err != nil || value != 1 {
			atomic.AddInt64(&c.wrong, 1)
			return fmt.Errorf("pow: power %d is %d (%v)", i, value, err)
		}
	}
}

func doSum(ctx context.Context, cc *grpc.ClientConn, rng *rand.Rand, c *counters) error {
	n := 1 + rng.Intn(500)
	stream, err := cc.NewStream(ctx, sumDesc, "/stream.ClientStream/Sum", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	want := int64(0)
	for i := 1; i <= n; i++ {
		message := varintField(1, uint64(i))
		want += int64(i)
		if err := stream.SendMsg(&message); err != nil {
			break // the status comes from RecvMsg
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	var reply []byte
	if err := stream.RecvMsg(&reply); err != nil {
		return err
	}
	if got, err := firstVarint(reply); err != nil || got != want {
		atomic.AddInt64(&c.wrong, 1)
		return fmt.Errorf("sum: %d, want %d (%v)", got, want, err)
	}
	return nil
}

func doSqrt(ctx context.Context, cc *grpc.ClientConn, rng *rand.Rand, c *counters) error {
	n := 1 + rng.Intn(60)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cc.NewStream(ctx, sqrtDesc, "/stream.BidirectionalStreamServer/Sqrt", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	// Numbers go in bursts of 1 to 8, each burst after the answers to the one before, so
	// answers and requests interleave on the stream as an interactive client's would.
	received := 0
	for sent := 0; sent < n; {
		burst := 1 + rng.Intn(8)
		if sent+burst > n {
			burst = n - sent
		}
		for i := 0; i < burst; i++ {
			value := float64((sent + i) * (sent + i))
			message := doubleField(1, value)
			if err := stream.SendMsg(&message); err != nil {
				return err
			}
		}
		sent += burst
		for received < sent {
			var reply []byte
			done := make(chan error, 1)
			go func() { done <- stream.RecvMsg(&reply) }()
			select {
			case err := <-done:
				if err != nil {
					return err
				}
			case <-time.After(stallAfter):
				atomic.AddInt64(&c.stalled, 1)
				cancel()
				<-done
				return fmt.Errorf("sqrt stalled: received %d of %d, waiting for the next root", received, sent)
			}
			root, err := firstDouble(reply)
			if err != nil || root != float64(received) {
				atomic.AddInt64(&c.wrong, 1)
				return fmt.Errorf("sqrt: answer %d is %v (%v)", received, root, err)
			}
			received++
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	var extra []byte
	if err := stream.RecvMsg(&extra); err != io.EOF {
		return fmt.Errorf("sqrt: expected the end, got %v", err)
	}
	return nil
}

func main() {
	address := flag.String("address", "127.0.0.1:8083", "server address")
	connections := flag.Int("connections", 10, "connections")
	streams := flag.Int("streams", 1000, "concurrent streams, spread over the kinds and connections")
	duration := flag.Duration("duration", 45*time.Second, "how long to keep starting calls")
	deadline := flag.Duration("deadline", 30*time.Second, "deadline of each call")
	mix := flag.String("mix", "pow,sum,sqrt", "kinds to run: any of pow, sum, sqrt")
	flag.DurationVar(&stallAfter, "stall", 10*time.Second, "a stream without its next answer this long counts as stalled")
	flag.Parse()

	enabled := []int{}
	for i, kind := range kinds {
		for _, want := range splitComma(*mix) {
			if want == kind {
				enabled = append(enabled, i)
			}
		}
	}
	conns := make([]*grpc.ClientConn, *connections)
	for i := range conns {
		cc, err := grpc.Dial(*address, grpc.WithInsecure(), grpc.WithBlock())
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(2)
		}
		conns[i] = cc
	}
	var c counters
	var firstErrors sync.Map
	end := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for w := 0; w < *streams; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			cc := conns[w%len(conns)]
			kind := enabled[w%len(enabled)]
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), *deadline)
				var err error
				switch kind {
				case 0:
					err = doPow(ctx, cc, rng, &c)
				case 1:
					err = doSum(ctx, cc, rng, &c)
				case 2:
					err = doSqrt(ctx, cc, rng, &c)
				}
				cancel()
				atomic.AddInt64(&c.calls[kind], 1)
				if err != nil {
					atomic.AddInt64(&c.failed, 1)
					key := kinds[kind] + " " + status.Code(err).String()
					firstErrors.LoadOrStore(key, err.Error())
				}
			}
		}(w)
	}
	wg.Wait()
	for _, cc := range conns {
		cc.Close()
	}
	fmt.Printf("calls pow=%d sum=%d sqrt=%d failed=%d wrong=%d stalled=%d\n",
		c.calls[0], c.calls[1], c.calls[2], c.failed, c.wrong, c.stalled)
	firstErrors.Range(func(key, value interface{}) bool {
		fmt.Printf("first %s: %s\n", key, value)
		return true
	})
	if c.failed != 0 || c.wrong != 0 || c.stalled != 0 {
		os.Exit(1)
	}
}

func splitComma(s string) []string {
	out := []string{}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
