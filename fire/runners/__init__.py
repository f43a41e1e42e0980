"""What the test runners share: starting servers (`spawn`, with its supervisor
`supervise`, which imports only the standard library) and a test's data changes, as a
server extension reports them (`data_changes`)."""
