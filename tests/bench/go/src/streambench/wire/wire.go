// Package wire is the article's three services for grpc-go without generated code: the
// messages, a codec for them, and the service descriptions. The benchmark builds it in GOPATH
// mode against Debian's golang-google-grpc-dev, where no protoc runs.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// PowRequest is stream.ServerStreamReq.
type PowRequest struct {
	Number int64
	Count  uint32
}

// PowReply is stream.ServerStreamResp.
type PowReply struct{ Number int64 }

// SumRequest is stream.ClientStreamReq.
type SumRequest struct{ Number int64 }

// SumReply is stream.ClientStreamResp.
type SumReply struct{ Sum int64 }

// SqrtRequest is stream.AllStreamReq.
type SqrtRequest struct{ Number float64 }

// SqrtReply is stream.AllStreamResp.
type SqrtReply struct{ Sqrt float64 }

// Codec encodes the six messages as protobuf does; it replaces the "proto" codec.
type Codec struct{}

// Name is the content subtype the codec serves.
func (Codec) Name() string { return "proto" }

func init() { encoding.RegisterCodec(Codec{}) }

func appendVarint(out []byte, value uint64) []byte {
	for value >= 0x80 {
		out = append(out, byte(value)|0x80)
		value >>= 7
	}
	return append(out, byte(value))
}

func appendInt64(out []byte, field byte, value int64) []byte {
	if value == 0 {
		return out
	}
	return appendVarint(append(out, field<<3), uint64(value))
}

func appendDouble(out []byte, field byte, value float64) []byte {
	bits := math.Float64bits(value)
	if bits == 0 {
		return out
	}
	out = append(out, field<<3|1)
	return binary.LittleEndian.AppendUint64(out, bits)
}

// Marshal encodes one of the six messages.
func (Codec) Marshal(value interface{}) ([]byte, error) {
	out := make([]byte, 0, 16)
	switch message := value.(type) {
	case *PowRequest:
		out = appendInt64(out, 1, message.Number)
		if message.Count != 0 {
			out = appendVarint(append(out, 2<<3), uint64(message.Count))
		}
	case *PowReply:
		out = appendInt64(out, 1, message.Number)
	case *SumRequest:
		out = appendInt64(out, 1, message.Number)
	case *SumReply:
		out = appendInt64(out, 1, message.Sum)
	case *SqrtRequest:
		out = appendDouble(out, 1, message.Number)
	case *SqrtReply:
		out = appendDouble(out, 1, message.Sqrt)
	default:
		return nil, fmt.Errorf("codec cannot encode %T", value)
	}
	return out, nil
}

var errTruncated = errors.New("message is truncated")

// fields reads every field of a message; varints and fixed64 reach onField, others are skipped.
func fields(data []byte, onField func(field uint64, wireType uint64, value uint64)) error {
	for len(data) > 0 {
		tag, n := binary.Uvarint(data)
		if n <= 0 {
			return errTruncated
		}
		data = data[n:]
		field, wireType := tag>>3, tag&7
		switch wireType {
		case 0:
			value, n := binary.Uvarint(data)
			if n <= 0 {
				return errTruncated
			}
			data = data[n:]
			onField(field, wireType, value)
		case 1:
			if len(data) < 8 {
				return errTruncated
			}
			onField(field, wireType, binary.LittleEndian.Uint64(data))
			data = data[8:]
		case 2:
			length, n := binary.Uvarint(data)
			if n <= 0 || uint64(len(data)-n) < length {
				return errTruncated
			}
			data = data[n+int(length):]
		case 5:
			if len(data) < 4 {
				return errTruncated
			}
			data = data[4:]
		default:
			return fmt.Errorf("wire type %d is not supported", wireType)
		}
	}
	return nil
}

// Unmarshal decodes one of the six messages.
func (Codec) Unmarshal(data []byte, value interface{}) error {
	switch message := value.(type) {
	case *PowRequest:
		*message = PowRequest{}
		return fields(data, func(field, wireType, raw uint64) {
			if field == 1 && wireType == 0 {
				message.Number = int64(raw)
			} else if field == 2 && wireType == 0 {
				message.Count = uint32(raw)
			}
		})
	case *PowReply:
		*message = PowReply{}
		return fields(data, func(field, wireType, raw uint64) {
			if field == 1 && wireType == 0 {
				message.Number = int64(raw)
			}
		})
	case *SumRequest:
		*message = SumRequest{}
		return fields(data, func(field, wireType, raw uint64) {
			if field == 1 && wireType == 0 {
				message.Number = int64(raw)
			}
		})
	case *SumReply:
		*message = SumReply{}
		return fields(data, func(field, wireType, raw uint64) {
			if field == 1 && wireType == 0 {
				message.Sum = int64(raw)
			}
		})
	case *SqrtRequest:
		*message = SqrtRequest{}
		return fields(data, func(field, wireType, raw uint64) {
			if field == 1 && wireType == 1 {
				message.Number = math.Float64frombits(raw)
			}
		})
	case *SqrtReply:
		*message = SqrtReply{}
		return fields(data, func(field, wireType, raw uint64) {
			if field == 1 && wireType == 1 {
				message.Sqrt = math.Float64frombits(raw)
			}
		})
	}
	return fmt.Errorf("codec cannot decode %T", value)
}

// Method paths of the wire contract.
const (
	PowMethod  = "/stream.ServerStream/Pow"
	SumMethod  = "/stream.ClientStream/Sum"
	SqrtMethod = "/stream.BidirectionalStreamServer/Sqrt"
)

// Handlers is what a server implements.
type Handlers interface {
	Pow(request *PowRequest, stream grpc.ServerStream) error
	Sum(stream grpc.ServerStream) error
	Sqrt(stream grpc.ServerStream) error
}

// Register adds the three services to a server.
func Register(server *grpc.Server, handlers Handlers) {
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "stream.ServerStream",
		HandlerType: (*Handlers)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Pow",
			ServerStreams: true,
			Handler: func(service interface{}, stream grpc.ServerStream) error {
				request := new(PowRequest)
				if err := stream.RecvMsg(request); err != nil {
					return err
				}
				return service.(Handlers).Pow(request, stream)
			},
		}},
	}, handlers)
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "stream.ClientStream",
		HandlerType: (*Handlers)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Sum",
			ClientStreams: true,
			Handler: func(service interface{}, stream grpc.ServerStream) error {
				return service.(Handlers).Sum(stream)
			},
		}},
	}, handlers)
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "stream.BidirectionalStreamServer",
		HandlerType: (*Handlers)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Sqrt",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(service interface{}, stream grpc.ServerStream) error {
				return service.(Handlers).Sqrt(stream)
			},
		}},
	}, handlers)
}

// Stream descriptions for clients.
var (
	PowStream  = &grpc.StreamDesc{StreamName: "Pow", ServerStreams: true}
	SumStream  = &grpc.StreamDesc{StreamName: "Sum", ClientStreams: true}
	SqrtStream = &grpc.StreamDesc{StreamName: "Sqrt", ServerStreams: true, ClientStreams: true}
)
