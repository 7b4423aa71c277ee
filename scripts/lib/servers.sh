# shellcheck shell=bash
# Server helpers shared by scripts/demo.sh and scripts/bench.sh. The caller defines die().

# A free TCP port on 127.0.0.1 (nothing answers a connect; servers started on it retry anyway).
pick_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

# stop_pidfile PIDFILE [PREFIX...]: stops the process PIDFILE names (SIGTERM, then SIGKILL
# after 10 s) if it runs, and removes PIDFILE. PREFIX (e.g. sudo) is tried when a plain kill is
# refused.
stop_pidfile() {
    local pidfile="$1" pid
    shift
    [[ -f "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || { (($#)) && "$@" kill -TERM "$pid" 2>/dev/null; } || true
        for _ in $(seq 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}
