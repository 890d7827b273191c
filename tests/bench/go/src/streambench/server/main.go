// Command server serves the article's three services with grpc-go, with the semantics of the
// project's own server (exact powers, int64 sums that refuse to wrap, square roots that
// refuse negatives), as the benchmark's limit: the fastest stack for these calls. It prints
// {"port":N} once it listens on 127.0.0.1 and serves until its stdin ends.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"streambench/wire"
)

type handlers struct{}

const maxPowCount = 1000000

func (handlers) Pow(request *wire.PowRequest, stream grpc.ServerStream) error {
	count := request.Count
	if count == 0 {
		count = 10
	}
	if count > maxPowCount {
		return status.Errorf(codes.InvalidArgument, "Count is over this server's limit: %d > %d", count, maxPowCount)
	}
	power := int64(1)
	overflowed := false
	reply := &wire.PowReply{}
	for exponent := uint32(0); exponent < count; exponent++ {
		if overflowed {
			return status.Errorf(codes.OutOfRange, "Power does not fit in int64: %d^%d (after %d powers)", request.Number, exponent, exponent)
		}
		reply.Number = power
		if err := stream.SendMsg(reply); err != nil {
			return err
		}
		next, fits := multiply(power, request.Number)
		power, overflowed = next, !fits
	}
	return nil
}

func multiply(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	negative := (a < 0) != (b < 0)
	ua, ub := abs(a), abs(b)
	high, low := bits.Mul64(ua, ub)
	if high != 0 {
		return 0, false
	}
	if negative {
		if low > 1<<63 {
			return 0, false
		}
		return int64(-low), true
	}
	if low > math.MaxInt64 {
		return 0, false
	}
	return int64(low), true
}

func abs(value int64) uint64 {
	if value < 0 {
		return uint64(-value)
	}
	return uint64(value)
}

func (handlers) Sum(stream grpc.ServerStream) error {
	var total int64
	request := &wire.SumRequest{}
	for {
		err := stream.RecvMsg(request)
		if err == io.EOF {
			return stream.SendMsg(&wire.SumReply{Sum: total})
		}
		if err != nil {
			return err
		}
		next := total + request.Number
		if (request.Number > 0 && next < total) || (request.Number < 0 && next > total) {
			return status.Errorf(codes.OutOfRange, "Sum does not fit in int64")
		}
		total = next
	}
}

func (handlers) Sqrt(stream grpc.ServerStream) error {
	request := &wire.SqrtRequest{}
	reply := &wire.SqrtReply{}
	for position := 1; ; position++ {
		err := stream.RecvMsg(request)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if math.IsNaN(request.Number) || request.Number < 0 {
			return status.Errorf(codes.InvalidArgument, "Number has no real square root: %v (message %d)", request.Number, position)
		}
		reply.Sqrt = math.Sqrt(request.Number)
		if err := stream.SendMsg(reply); err != nil {
			return err
		}
	}
}

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	wire.Register(server, handlers{})
	announcement, _ := json.Marshal(map[string]int{"port": listener.Addr().(*net.TCPAddr).Port})
	fmt.Println(string(announcement))
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		server.Stop()
	}()
	_ = server.Serve(listener)
}
