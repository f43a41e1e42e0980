#!/bin/sh
# Run a command while both services' fire servers run, as a CI job would:
#
#     ./with-servers.sh python -m unittest -v system_tests/test_orders_unittest.py
#
# Each server listens on fire.sock beside its manage.py, serves HTTP on a free port and
# writes its output to <service>/fire.log. Both stop (SIGTERM: they drop their test
# databases and sockets) when the command ends; the script exits with its status.
set -u
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
SERVICES="accounts shop"

pids=
stop_servers() {
    [ -n "$pids" ] && kill $pids 2>/dev/null
    wait
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

fail() {
    echo "$1" >&2
    for service in $SERVICES; do
        echo "--- $service/fire.log:" >&2
        cat "$service/fire.log" >&2
    done
    exit 1
}

for service in $SERVICES; do
    "$PYTHON" "$service/manage.py" runfireserver --http 127.0.0.1:0 >"$service/fire.log" 2>&1 &
    pids="$pids $!"
done

# Wait (up to 60 s) until each server says it is ready; give up if one exits.
for service in $SERVICES; do
    waited=0
    until grep -q "fire server ready" "$service/fire.log"; do
        for pid in $pids; do
            kill -0 "$pid" 2>/dev/null || fail "a fire server exited before it was ready"
        done
        [ "$waited" -lt 600 ] || fail "the $service fire server was not ready after 60 s"
        sleep 0.1
        waited=$((waited + 1))
    done
done

"$@"
