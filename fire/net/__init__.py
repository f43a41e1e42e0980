"""The network: addresses (Unix sockets, ``tcp://``), ZeroMQ CURVE keys and
authentication (`curve`), and the client's ZeroMQ transport (`transport`)."""
