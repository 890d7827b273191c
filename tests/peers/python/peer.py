#!/usr/bin/python3
"""A gRPC C-core peer for the interop tests (Debian's python3-grpcio).

A server of the three streaming methods with the project's semantics, and a client that
makes a list of calls over one channel. The services are generic handlers and the messages
are encoded by hand, so nothing is generated with protoc.

Run with Debian's Python, which has grpcio (another python3 on PATH may not):

    /usr/bin/python3 tests/peers/python/peer.py serve
        listens on a free port of 127.0.0.1, prints "Serving gRPC on 127.0.0.1:PORT",
        logs on stderr where each call comes from and how it ends
    /usr/bin/python3 tests/peers/python/peer.py client HOST:PORT < calls.json
        reads a JSON array of calls (see tests/peers/README.md), makes them one after
        another over one channel, prints one JSON line per call:
        {"values": [...], "received": N, "code": "OK", "details": ""}
"""

import json
import math
import struct
import sys
import threading
from concurrent import futures

import grpc

# The largest count a Pow call may ask for, as the project's server's default maxPowCount.
MAX_POW_COUNT = 1_000_000
# The count a Pow request means when it leaves the field at 0, as the original demo did.
DEFAULT_POW_COUNT = 10
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64 = 2**64

# ---- Messages ----------------------------------------------------------------------------


def encode_varint(value):
    value %= UINT64
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_fields(data):
    """Yields (field, wire type, value) for each field; value is an int or bytes."""
    position = 0

    def varint():
        nonlocal position
        result = shift = 0
        while True:
            if position >= len(data) or shift > 63:
                raise ValueError("malformed varint")
            byte = data[position]
            position += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result % UINT64

    while position < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value = bytes(data[position : position + size])
            if len(value) < size:
                raise ValueError("truncated fixed-size field")
            position += size
        elif wire == 2:
            length = varint()
            value = bytes(data[position : position + length])
            if len(value) < length:
                raise ValueError("truncated length-delimited field")
            position += length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def signed64(value):
    return value - UINT64 if value >= 2**63 else value


def encode_int64(value):
    """stream.ServerStreamResp, ClientStreamReq and ClientStreamResp: int64 field 1."""
    return b"" if value == 0 else b"\x08" + encode_varint(value)


def decode_int64(data):
    value = 0
    for field, wire, raw in read_fields(data):
        if field == 1 and wire == 0:
            value = signed64(raw)
    return value


def encode_pow_request(request):
    """stream.ServerStreamReq: int64 number = 1; uint32 count = 2."""
    number, count = request
    data = b"" if number == 0 else b"\x08" + encode_varint(number)
    return data + (b"" if count == 0 else b"\x10" + encode_varint(count))


def decode_pow_request(data):
    number = count = 0
    for field, wire, raw in read_fields(data):
        if field == 1 and wire == 0:
            number = signed64(raw)
        elif field == 2 and wire == 0:
            count = raw % 2**32
    return number, count


def encode_double(value):
    """stream.AllStreamReq and AllStreamResp: double field 1."""
    data = struct.pack("<d", value)
    # -0 has its sign bit set and is sent; only +0 is the default.
    return b"" if data == bytes(8) else b"\x09" + data


def decode_double(data):
    value = 0.0
    for field, wire, raw in read_fields(data):
        if field == 1 and wire == 1:
            (value,) = struct.unpack("<d", raw)
    return value


def format_double(value):
    """A double as JavaScript's String() writes the values the tests use."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e21:
        return ("-" if math.copysign(1, value) < 0 else "") + str(abs(int(value)))
    return repr(value)


# ---- Server ------------------------------------------------------------------------------


_log_lock = threading.Lock()


def log(line):
    # Handlers run on several threads, and print() writes the line and its end separately:
    # one write under a lock keeps two calls' lines from running together.
    with _log_lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def log_call(method, context):
    """Logs where a call comes from, so tests can tell calls on one connection apart."""
    log(f"Call {method} from {context.peer().removeprefix('ipv4:')}")


def fits_int64(value):
    return INT64_MIN <= value <= INT64_MAX


def call_end(context, on_end):
    """Runs `on_end` once the call has ended, or now if it has ended already.

    A client that resets a stream in the same write as its HEADERS has ended the call before
    the handler runs, and grpcio's `add_callback` then refuses the callback (returns False).
    """
    if not context.add_callback(on_end):
        on_end()


def was_cancelled(context):
    """Whether the client cancelled the call or its deadline passed, known once it has ended.

    grpcio's sync server can end the request iterator as if the client had half-closed when
    a cancel races it (grpc/grpc#33038, open); only its private state tells the two apart.
    Remove when the iterator raises on every cancel.
    """
    return getattr(context._state, "client", None) == "cancelled"


def pow_handler(request, context):
    log_call("Pow", context)
    base, count = request
    count = count or DEFAULT_POW_COUNT
    if count > MAX_POW_COUNT:
        log(f"Pow({base}) refused: count {count} is over {MAX_POW_COUNT}")
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Count is over this server's limit: {count} > {MAX_POW_COUNT}",
        )
    sent = 0
    finished = False

    def on_end():
        # C-core stops pulling replies from a cancelled call, so this is where it shows.
        if not finished or was_cancelled(context):
            log(f"Pow({base}) cancelled after {sent} of {count} powers")

    call_end(context, on_end)
    power = 1
    for exponent in range(count):
        if not fits_int64(power):
            finished = True
            log(f"Pow({base}) stopped: {base}^{exponent} does not fit in int64")
            context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"Power does not fit in int64: {base}^{exponent} (after {exponent} powers)",
            )
        if not context.is_active():
            return
        yield power
        sent += 1
        power *= base
    finished = True
    log(f"Pow({base}) sent {count} powers")


def sum_handler(requests, context):
    log_call("Sum", context)
    total = received = 0
    outcome = []

    def on_end():
        if was_cancelled(context):
            log(f"Sum cancelled after {received} numbers")
        elif outcome:
            log(outcome[0])

    call_end(context, on_end)
    for number in requests:  # raises grpc.RpcError on most cancels: on_end tells
        total += number
        received += 1
    if not fits_int64(total):
        outcome.append(f"Sum refused: the total {total} does not fit in int64")
        context.abort(grpc.StatusCode.OUT_OF_RANGE, f"Sum does not fit in int64: {total}")
    outcome.append(f"Sum of {received} numbers: {total}")
    return total


def sqrt_handler(requests, context):
    log_call("Sqrt", context)
    position = 0
    outcome = []

    def on_end():
        if was_cancelled(context):
            log(f"Sqrt cancelled after {position} numbers")
        elif outcome:
            log(outcome[0])

    call_end(context, on_end)
    for number in requests:
        position += 1
        if math.isnan(number) or number < 0:
            outcome.append(f"Sqrt refused message {position}: {format_double(number)}")
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Number has no real square root: {format_double(number)} (message {position})",
            )
        yield math.sqrt(number)
    outcome.append(f"Sqrt answered {position} numbers")


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "stream.ServerStream",
                {
                    "Pow": grpc.unary_stream_rpc_method_handler(
                        pow_handler,
                        request_deserializer=decode_pow_request,
                        response_serializer=encode_int64,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "stream.ClientStream",
                {
                    "Sum": grpc.stream_unary_rpc_method_handler(
                        sum_handler,
                        request_deserializer=decode_int64,
                        response_serializer=encode_int64,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "stream.BidirectionalStreamServer",
                {
                    "Sqrt": grpc.stream_stream_rpc_method_handler(
                        sqrt_handler,
                        request_deserializer=decode_double,
                        response_serializer=encode_double,
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"Serving gRPC on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


# ---- Client ------------------------------------------------------------------------------


def outcome(values, call_or_error):
    code = call_or_error.code()
    return {
        "values": values,
        "received": len(values),
        "code": code.name,
        "details": call_or_error.details() or "",
    }


def call_pow(channel, call):
    method = channel.unary_stream(
        "/stream.ServerStream/Pow",
        request_serializer=encode_pow_request,
        response_deserializer=decode_int64,
    )
    replies = method((int(call["number"]), call.get("count", 0)), timeout=call.get("timeout"))
    values = []
    try:
        for reply in replies:
            values.append(str(reply))
            if len(values) == call.get("cancelAfter"):
                replies.cancel()
                break
    except grpc.RpcError:
        pass
    return outcome(values, replies)


def call_sum(channel, call):
    method = channel.stream_unary(
        "/stream.ClientStream/Sum",
        request_serializer=encode_int64,
        response_deserializer=decode_int64,
    )
    done = threading.Event()
    holder = []
    # grpcio may pull the first requests on its own thread before `future` returns here.
    started = threading.Event()

    def numbers():
        if "upTo" in call:
            source = range(1, call["upTo"] + 1)
        else:
            source = (int(text) for text in call["numbers"])
        for sent, number in enumerate(source, 1):
            yield number
            if sent == call.get("cancelAfter"):
                started.wait()
                holder[0].cancel()
                return
        if call.get("hold"):
            done.wait()

    future = method.future(numbers(), timeout=call.get("timeout"))
    holder.append(future)
    started.set()
    future.add_done_callback(lambda _: done.set())
    try:
        return outcome([str(future.result())], future)
    except (grpc.RpcError, grpc.FutureCancelledError):
        return outcome([], future)


def call_sqrt(channel, call):
    method = channel.stream_stream(
        "/stream.BidirectionalStreamServer/Sqrt",
        request_serializer=encode_double,
        response_deserializer=decode_double,
    )
    done = threading.Event()
    answered = threading.Semaphore(0)

    def numbers():
        for text in call["numbers"]:
            yield float(text)
            if call.get("interactive"):
                # Each answer must come back before the next number goes out.
                answered.acquire()
                if done.is_set():
                    return
        if call.get("hold"):
            done.wait()

    replies = method(numbers(), timeout=call.get("timeout"))
    replies.add_done_callback(lambda _: (done.set(), answered.release()))
    values = []
    try:
        for reply in replies:
            values.append(format_double(reply))
            answered.release()
            if len(values) == call.get("cancelAfter"):
                replies.cancel()
                break
    except grpc.RpcError:
        pass
    return outcome(values, replies)


def run_client(address):
    calls = json.load(sys.stdin)
    methods = {"pow": call_pow, "sum": call_sum, "sqrt": call_sqrt}
    with grpc.insecure_channel(address) as channel:
        for call in calls:
            if "timeoutMs" in call:
                call["timeout"] = call["timeoutMs"] / 1000
            result = methods[call["method"]](channel, call)
            if call.get("quiet"):
                del result["values"]
            print(json.dumps(result), flush=True)


def main():
    if sys.argv[1:] == ["serve"]:
        serve()
    elif len(sys.argv) == 3 and sys.argv[1] == "client":
        run_client(sys.argv[2])
    else:
        print("usage: peer.py serve | peer.py client HOST:PORT < calls.json", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
