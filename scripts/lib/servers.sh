# shellcheck shell=bash
# Server helpers shared by scripts/demo.sh, scripts/bench.sh and scripts/conformance.sh. The
# caller defines die().

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

# wait_until SECONDS COMMAND...: runs COMMAND every 50 ms until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# run_registry RUNDIR NAME STORAGE [PORT]: starts docker-registry NAME serving STORAGE on PORT
# (default: a free one; a port found taken is picked again) and waits until /v2/ answers. Its
# pid and port go to RUNDIR/NAME.pid and RUNDIR/NAME.port, its config and log to RUNDIR/NAME/.
run_registry() {
    local run="$1" name="$2" storage="$3" fixed="${4:-0}" dir="$1/$2" port attempt
    mkdir -p "$dir" "$storage"
    for attempt in $(seq 8); do
        port="$fixed"
        [[ "$fixed" != 0 ]] || port="$(pick_port)"
        cat >"$dir/config.yml" <<CONFIG
version: 0.1
log: {level: warn, formatter: text, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: "$storage"}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: "127.0.0.1:$port", secret: ferry-scripts-secret}
CONFIG
        # REGISTRY_* variables (REGISTRY_AUTH_FILE, set for skopeo and ferry among them) would
        # override config.yml keys: keep them out.
        local unset=()
        mapfile -t unset < <(env | sed -n 's/^\(REGISTRY_[A-Za-z0-9_]*\)=.*/-u\n\1/p')
        env "${unset[@]}" docker-registry serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
        echo $! >"$run/$name.pid"
        echo "$port" >"$run/$name.port"
        for _ in $(seq 600); do
            curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
            kill -0 "$(cat "$run/$name.pid")" 2>/dev/null || break
            sleep 0.05
        done
        stop_pidfile "$run/$name.pid"
        if grep -q "address already in use" "$dir/registry.log" && [[ "$fixed" == 0 || $attempt -lt 3 ]]; then
            sleep 0.2
            continue
        fi
        cat "$dir/registry.log" >&2
        die "docker-registry $name did not start on port $port (log above)"
    done
    die "docker-registry $name: no free port"
}
