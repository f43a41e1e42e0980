"""The server: its core without I/O (`dispatch`: sessions, handshake, operations, replies),
the ZeroMQ socket loop that drives it (`loop`), each client's session and references
(`session`), the operations it answers (`operations`), what it tells clients of each
type (`shapes`), exceptions as plain data (`exception_data`) and its command-line
arguments (`options`)."""
