// A grpc-go peer for the interop tests: a server of the three streaming methods with the
// project's semantics, and a client that makes a list of calls over one connection.
//
// Debian packages grpc-go without protoc-gen-go, so the services are described by hand
// (grpc.ServiceDesc) and the messages are encoded by hand, through a codec registered under
// the name "proto" in place of grpc-go's own.
//
// Build (Debian's golang-go and golang-google-grpc-dev, GOPATH mode):
//
//	GOPATH=$(mktemp -d):/usr/share/gocode GO111MODULE=off go build -o peer ./tests/peers/go
//
// Run:
//
//	peer serve              listens on a free port of 127.0.0.1, prints
//	                        "Serving gRPC on 127.0.0.1:PORT", logs on stderr where each
//	                        call comes from and how it ends
//	peer client HOST:PORT   reads a JSON array of calls on stdin (see tests/peers/README.md),
//	                        makes them one after another over one connection and prints one
//	                        JSON line per call: {"values": [...], "code": "OK", "details": ""}
//	peer loop HOST:PORT …   Sum calls at a steady pace while the server restarts (see
//	                        restart_loop.go)
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The largest count a Pow call may ask for, as the project's server's default maxPowCount.
const maxPowCount = 1_000_000

// The count a Pow request means when it leaves the field at 0, as the original demo did.
const defaultPowCount = 10

// ---- Messages -------------------------------------------------------------------------

type message interface {
	marshal() []byte
	unmarshal(data []byte) error
}

// stream.ServerStreamReq: int64 number = 1; uint32 count = 2.
type powRequest struct {
	number int64
	count  uint32
}

// stream.ServerStreamResp, stream.ClientStreamReq and stream.ClientStreamResp: int64 field 1.
type int64Message struct{ value int64 }

// stream.AllStreamReq and stream.AllStreamResp: double field 1.
type doubleMessage struct{ value float64 }

func appendVarintField(data []byte, field int, value uint64) []byte {
	data = binary.AppendUvarint(data, uint64(field)<<3)
	return binary.AppendUvarint(data, value)
}

func (m *powRequest) marshal() []byte {
	var data []byte
	if m.number != 0 {
		data = appendVarintField(data, 1, uint64(m.number))
	}
	if m.count != 0 {
		data = appendVarintField(data, 2, uint64(m.count))
	}
	return data
}

func (m *powRequest) unmarshal(data []byte) error {
	return readFields(data, func(field int, wire int, varint uint64, _ []byte) error {
		switch {
		case field == 1 && wire == 0:
			m.number = int64(varint)
		case field == 2 && wire == 0:
			m.count = uint32(varint)
		}
		return nil
	})
}

func (m *int64Message) marshal() []byte {
	if m.value == 0 {
		return nil
	}
	return appendVarintField(nil, 1, uint64(m.value))
}

func (m *int64Message) unmarshal(data []byte) error {
	return readFields(data, func(field int, wire int, varint uint64, _ []byte) error {
		if field == 1 && wire == 0 {
			m.value = int64(varint)
		}
		return nil
	})
}

func (m *doubleMessage) marshal() []byte {
	bits := math.Float64bits(m.value)
	if bits == 0 { // -0 has its sign bit set and is sent
		return nil
	}
	data := binary.AppendUvarint(nil, 1<<3|1)
	return binary.LittleEndian.AppendUint64(data, bits)
}

func (m *doubleMessage) unmarshal(data []byte) error {
	return readFields(data, func(field int, wire int, _ uint64, fixed []byte) error {
		if field == 1 && wire == 1 {
			m.value = math.Float64frombits(binary.LittleEndian.Uint64(fixed))
		}
		return nil
	})
}

// readFields calls visit for each field of a protobuf message, skipping what visit ignores.
func readFields(data []byte, visit func(field int, wire int, varint uint64, bytes []byte) error) error {
	for len(data) > 0 {
		key, n := binary.Uvarint(data)
		if n <= 0 {
			return errors.New("malformed field key")
		}
		data = data[n:]
		field, wire := int(key>>3), int(key&7)
		var varint uint64
		var bytes []byte
		switch wire {
		case 0:
			varint, n = binary.Uvarint(data)
			if n <= 0 {
				return errors.New("malformed varint")
			}
			data = data[n:]
		case 1, 5:
			size := 8
			if wire == 5 {
				size = 4
			}
			if len(data) < size {
				return errors.New("truncated fixed-size field")
			}
			bytes, data = data[:size], data[size:]
		case 2:
			length, n := binary.Uvarint(data)
			if n <= 0 || uint64(len(data)-n) < length {
				return errors.New("truncated length-delimited field")
			}
			bytes, data = data[n:n+int(length)], data[n+int(length):]
		default:
			return fmt.Errorf("unsupported wire type %d", wire)
		}
		if err := visit(field, wire, varint, bytes); err != nil {
			return err
		}
	}
	return nil
}

type codec struct{}

func (codec) Marshal(v interface{}) ([]byte, error) {
	m, ok := v.(message)
	if !ok {
		return nil, fmt.Errorf("not a message of this peer: %T", v)
	}
	return m.marshal(), nil
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	m, ok := v.(message)
	if !ok {
		return fmt.Errorf("not a message of this peer: %T", v)
	}
	return m.unmarshal(data)
}

func (codec) Name() string { return "proto" }

func init() {
	// Runs after grpc-go's encoding/proto registered its codec, and replaces it.
	encoding.RegisterCodec(codec{})
}

// ---- Server ---------------------------------------------------------------------------

// formatDouble writes a double as JavaScript's String() does for the values the tests use.
func formatDouble(value float64) string {
	switch {
	case math.IsNaN(value):
		return "NaN"
	case math.IsInf(value, 1):
		return "Infinity"
	case math.IsInf(value, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(value, 'g', -1, 64)
}

// logCall logs where a call comes from, so tests can tell calls on one connection apart.
func logCall(method string, stream grpc.ServerStream) {
	if client, ok := peer.FromContext(stream.Context()); ok {
		log.Printf("Call %s from %s", method, client.Addr)
	}
}

func pow(_ interface{}, stream grpc.ServerStream) error {
	logCall("Pow", stream)
	var request powRequest
	if err := stream.RecvMsg(&request); err != nil {
		return err
	}
	count := request.count
	if count == 0 {
		count = defaultPowCount
	}
	base := request.number
	if count > maxPowCount {
		log.Printf("Pow(%d) refused: count %d is over %d", base, count, maxPowCount)
		return status.Errorf(codes.InvalidArgument,
			"Count is over this server's limit: %d > %d", count, maxPowCount)
	}
	ctx := stream.Context()
	power, multiplier := big.NewInt(1), big.NewInt(base)
	for exponent := uint32(0); exponent < count; exponent++ {
		if !power.IsInt64() {
			log.Printf("Pow(%d) stopped: %d^%d does not fit in int64", base, base, exponent)
			return status.Errorf(codes.OutOfRange,
				"Power does not fit in int64: %d^%d (after %d powers)", base, exponent, exponent)
		}
		if ctx.Err() != nil {
			log.Printf("Pow(%d) cancelled after %d of %d powers", base, exponent, count)
			return status.FromContextError(ctx.Err()).Err()
		}
		if err := stream.SendMsg(&int64Message{power.Int64()}); err != nil {
			log.Printf("Pow(%d) cancelled after %d of %d powers", base, exponent, count)
			return err
		}
		power.Mul(power, multiplier)
	}
	log.Printf("Pow(%d) sent %d powers", base, count)
	return nil
}

func sum(_ interface{}, stream grpc.ServerStream) error {
	logCall("Sum", stream)
	total, addend := new(big.Int), new(big.Int)
	received := 0
	for {
		var request int64Message
		err := stream.RecvMsg(&request)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Printf("Sum cancelled after %d numbers", received)
			return err
		}
		received++
		total.Add(total, addend.SetInt64(request.value))
	}
	if !total.IsInt64() {
		log.Printf("Sum refused: the total %s does not fit in int64", total)
		return status.Errorf(codes.OutOfRange, "Sum does not fit in int64: %s", total)
	}
	log.Printf("Sum of %d numbers: %s", received, total)
	return stream.SendMsg(&int64Message{total.Int64()})
}

func sqrt(_ interface{}, stream grpc.ServerStream) error {
	logCall("Sqrt", stream)
	position := 0
	for {
		var request doubleMessage
		err := stream.RecvMsg(&request)
		if err == io.EOF {
			log.Printf("Sqrt answered %d numbers", position)
			return nil
		}
		if err != nil {
			log.Printf("Sqrt cancelled after %d numbers", position)
			return err
		}
		position++
		number := request.value
		if math.IsNaN(number) || number < 0 {
			log.Printf("Sqrt refused message %d: %s", position, formatDouble(number))
			return status.Errorf(codes.InvalidArgument,
				"Number has no real square root: %s (message %d)", formatDouble(number), position)
		}
		if err := stream.SendMsg(&doubleMessage{math.Sqrt(number)}); err != nil {
			log.Printf("Sqrt cancelled after %d numbers", position)
			return err
		}
	}
}

func service(name, method string, handler grpc.StreamHandler, client, server bool) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*interface{})(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    method,
			Handler:       handler,
			ClientStreams: client,
			ServerStreams: server,
		}},
	}
}

func serve() error {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := grpc.NewServer()
	server.RegisterService(service("stream.ServerStream", "Pow", pow, false, true), struct{}{})
	server.RegisterService(service("stream.ClientStream", "Sum", sum, true, false), struct{}{})
	server.RegisterService(
		service("stream.BidirectionalStreamServer", "Sqrt", sqrt, true, true), struct{}{})
	fmt.Printf("Serving gRPC on %s\n", listener.Addr())
	return server.Serve(listener)
}

// ---- Client ---------------------------------------------------------------------------

// One call the client makes: see tests/peers/README.md.
type call struct {
	Method      string   `json:"method"`
	Number      string   `json:"number"`
	Count       uint32   `json:"count"`
	Numbers     []string `json:"numbers"`
	UpTo        int64    `json:"upTo"`
	TimeoutMs   int64    `json:"timeoutMs"`
	CancelAfter int      `json:"cancelAfter"`
	KillAfter   int      `json:"killAfter"`
	KillDelayMs int64    `json:"killDelayMs"`
	Hold        bool     `json:"hold"`
	Interactive bool     `json:"interactive"`
	Quiet       bool     `json:"quiet"`
}

type result struct {
	Values   []string `json:"values,omitempty"`
	Received int      `json:"received"`
	Code     string   `json:"code"`
	Details  string   `json:"details"`
}

var codeNames = []string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func finish(values []string, err error) result {
	if values == nil {
		values = []string{}
	}
	if err == nil || err == io.EOF {
		return result{values, len(values), "OK", ""}
	}
	s := status.Convert(err)
	name := "UNKNOWN"
	if int(s.Code()) < len(codeNames) {
		name = codeNames[s.Code()]
	}
	return result{values, len(values), name, s.Message()}
}

// crashAt ends the client's process with SIGKILL, as a crash or an OOM kill would, once a
// call has sent or received killAfter messages (and killDelayMs later, the call going on
// meanwhile, as when another process does the killing): no RST_STREAM, no GOAWAY, only what
// the kernel does with the process's socket. It prints {"killed": N} first.
func crashAt(count int, c call) {
	if c.KillAfter <= 0 || count != c.KillAfter {
		return
	}
	os.Stdout.WriteString(`{"killed":` + strconv.Itoa(count) + "}\n")
	kill := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	if c.KillDelayMs > 0 {
		time.AfterFunc(time.Duration(c.KillDelayMs)*time.Millisecond, kill)
		return
	}
	kill()
	select {} // the signal is on its way
}

func parseInt64(text string) int64 {
	value, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		log.Fatalf("Bad int64 in the calls: %v", err)
	}
	return value
}

func parseDouble(text string) float64 {
	value, err := strconv.ParseFloat(text, 64)
	if err != nil {
		log.Fatalf("Bad double in the calls: %v", err)
	}
	return value
}

func callPow(ctx context.Context, cancel context.CancelFunc, conn *grpc.ClientConn, c call) result {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/stream.ServerStream/Pow")
	if err != nil {
		return finish(nil, err)
	}
	if err := stream.SendMsg(&powRequest{parseInt64(c.Number), c.Count}); err != nil && err != io.EOF {
		return finish(nil, err)
	}
	if err := stream.CloseSend(); err != nil {
		return finish(nil, err)
	}
	values := []string{}
	cancelled := false
	for {
		var reply int64Message
		if err := stream.RecvMsg(&reply); err != nil {
			return finish(values, err)
		}
		if cancelled {
			continue
		}
		values = append(values, strconv.FormatInt(reply.value, 10))
		crashAt(len(values), c)
		if c.CancelAfter > 0 && len(values) == c.CancelAfter {
			cancel()
			cancelled = true
		}
	}
}

func callSum(ctx context.Context, cancel context.CancelFunc, conn *grpc.ClientConn, c call) result {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/stream.ClientStream/Sum")
	if err != nil {
		return finish(nil, err)
	}
	sent := 0
	send := func(value int64) bool {
		if err := stream.SendMsg(&int64Message{value}); err != nil {
			return false // the status comes from RecvMsg
		}
		sent++
		crashAt(sent, c)
		if c.CancelAfter > 0 && sent == c.CancelAfter {
			cancel()
			return false
		}
		return true
	}
	if c.UpTo > 0 {
		for value := int64(1); value <= c.UpTo && send(value); value++ {
		}
	} else {
		for _, text := range c.Numbers {
			if !send(parseInt64(text)) {
				break
			}
		}
	}
	if !c.Hold {
		if err := stream.CloseSend(); err != nil {
			return finish(nil, err)
		}
	}
	var reply int64Message
	if err := stream.RecvMsg(&reply); err != nil {
		return finish(nil, err)
	}
	return finish([]string{strconv.FormatInt(reply.value, 10)}, nil)
}

func callSqrt(ctx context.Context, cancel context.CancelFunc, conn *grpc.ClientConn, c call) result {
	stream, err := conn.NewStream(ctx,
		&grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
		"/stream.BidirectionalStreamServer/Sqrt")
	if err != nil {
		return finish(nil, err)
	}
	values := []string{}
	cancelled := false
	receive := func() error {
		var reply doubleMessage
		if err := stream.RecvMsg(&reply); err != nil {
			return err
		}
		if !cancelled { // answers that arrive after the cancel are not reported
			values = append(values, formatDouble(reply.value))
			if c.CancelAfter > 0 && len(values) == c.CancelAfter {
				cancel()
				cancelled = true
			}
		}
		return nil
	}
	if c.Interactive {
		// Each answer must come back before the next number goes out.
		for _, text := range c.Numbers {
			if err := stream.SendMsg(&doubleMessage{parseDouble(text)}); err != nil {
				break // the status comes from RecvMsg
			}
			if err := receive(); err != nil {
				return finish(values, err)
			}
		}
		if !c.Hold {
			stream.CloseSend()
		}
	} else {
		go func() {
			sent := 0
			send := func(number float64) bool {
				if err := stream.SendMsg(&doubleMessage{number}); err != nil {
					return false
				}
				sent++
				crashAt(sent, c)
				return true
			}
			if c.UpTo > 0 {
				for value := int64(1); value <= c.UpTo; value++ {
					if !send(float64(value)) {
						return
					}
				}
			} else {
				for _, text := range c.Numbers {
					if !send(parseDouble(text)) {
						return
					}
				}
			}
			if !c.Hold {
				stream.CloseSend()
			}
		}()
	}
	for {
		if err := receive(); err != nil {
			return finish(values, err)
		}
	}
}

func runClient(address string) error {
	var calls []call
	if err := json.NewDecoder(os.Stdin).Decode(&calls); err != nil {
		return fmt.Errorf("cannot read the calls on stdin: %w", err)
	}
	conn, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		return err
	}
	defer conn.Close()
	output := json.NewEncoder(os.Stdout)
	for _, c := range calls {
		ctx, cancel := context.WithCancel(context.Background())
		if c.TimeoutMs > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(c.TimeoutMs)*time.Millisecond)
		}
		var r result
		switch c.Method {
		case "pow":
			r = callPow(ctx, cancel, conn, c)
		case "sum":
			r = callSum(ctx, cancel, conn, c)
		case "sqrt":
			r = callSqrt(ctx, cancel, conn, c)
		default:
			cancel()
			return fmt.Errorf("unknown method: %q", c.Method)
		}
		cancel()
		if c.Quiet {
			r.Values = nil
		}
		if err := output.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	log.SetFlags(0)
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == "serve":
		err = serve()
	case len(os.Args) == 3 && os.Args[1] == "client":
		err = runClient(os.Args[2])
	case len(os.Args) >= 2 && os.Args[1] == "loop":
		address, interval, deadline, waitForReady, parseErr := parseLoopArgs(os.Args[2:])
		if parseErr != nil {
			fmt.Fprintln(os.Stderr, parseErr)
			os.Exit(2)
		}
		err = runLoop(address, interval, deadline, waitForReady)
	default:
		fmt.Fprintln(os.Stderr, "usage: peer serve | peer client HOST:PORT < calls.json | peer loop HOST:PORT INTERVAL_MS DEADLINE_MS WAIT_FOR_READY")
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}
