"""Long ids through grpcio, whose C core refuses response metadata over 8 KiB at
random and all of it over 16 KiB: an error that quoted a long value whole used to
fail there as RESOURCE_EXHAUSTED ("received metadata size exceeds hard limit").

Calls story-service's WorldService/GetWorld and gpt-worker's JobService/GetJob with
ids of 100 000 characters, several times each, and checks every answer is
INVALID_ARGUMENT with a short message that names the id's length. Requests are
encoded by hand (field 1, a string), so no generated code is needed.

Usage: long_values.py STORY_ADDRESS WORKER_ADDRESS ACCESS_TOKEN
Prints one line per call; exits 1 when any answer is wrong.
"""

import sys

import grpc

LENGTH = 100_000
TRIES = 5
# (what, the id's text)
IDS = [("ASCII", "x" * LENGTH), ("four-byte characters", "\U0001D504" * LENGTH)]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def request_with_id(value: str) -> bytes:
    """A message whose field 1 (wire type 2, length-delimited) is `value`."""
    data = value.encode()
    return b"\x0a" + varint(len(data)) + data


def call(address: str, method: str, request: bytes, token: str):
    with grpc.insecure_channel(address) as channel:
        rpc = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            rpc(request, metadata=[("authorization", f"Bearer {token}")], timeout=30)
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def problem(code, details: str):
    if code != grpc.StatusCode.INVALID_ARGUMENT:
        return f"{code.name}, not INVALID_ARGUMENT"
    if f"({LENGTH} characters)" not in details:
        return "the message does not quote the id shortened, with its length"
    if len(details) > 1024:
        return f"a message of {len(details)} characters"
    return None


def main() -> int:
    story, worker, token = sys.argv[1:4]
    calls = [(story, "/fabula.story.v1.WorldService/GetWorld"), (worker, "/fabula.jobs.v1.JobService/GetJob")]
    failed = 0
    for address, method in calls:
        for what, value in IDS:
            for _ in range(TRIES):
                code, details = call(address, method, request_with_id(value), token)
                wrong = problem(code, details)
                failed += wrong is not None
                print(f"{method} with an id of {what}: {code.name}, {len(details)} characters: {details[:160]!r}"
                      + (f" -- WRONG: {wrong}" if wrong else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
