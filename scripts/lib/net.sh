# shellcheck shell=bash
# Shared by scripts/demo.sh and scripts/bench.sh. The caller defines die().

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
