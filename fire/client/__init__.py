"""The client: a connection to one server (`remote`) and the proxies that stand for the
server's objects (`proxy`)."""
