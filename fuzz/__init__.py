"""Fuzzing fire's wire protocol and server (issue 23): ``make fuzz``.

Two fuzzers, each reproducible from its seed:

- `fuzz.wire`: atheris (coverage-guided, libFuzzer) over the frame decoder, the
  handshake and a `fire.server.dispatch.Dispatcher` fed raw bytes in this process;
- `fuzz.live`: a hypothesis state machine against a live ``python -m fire serve``
  process over its Unix socket: good calls between wrong sequences.

Their operations reach only `fuzz.playground`'s harmless objects: what a client may do
with a server's modules is its power by design, not input to validate, and random bytes
must not import and run whatever they spell. docs/reference/fuzzing.md has the figures.
"""
