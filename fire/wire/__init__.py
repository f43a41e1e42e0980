"""The wire format, without I/O: messages and frames (`protocol`), the handshake and its
version choice (`handshake`), msgpack with fire's extension types (`codec`), and which
values travel by value (`values`). Bytes in, messages out: testable without a socket."""
