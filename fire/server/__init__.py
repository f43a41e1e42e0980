"""The server: its socket loop (`loop`), each client's session and references
(`session`), the operations it answers (`operations`), what it tells clients of each
type (`shapes`), exceptions as plain data (`exception_data`) and its command-line
arguments (`options`)."""
