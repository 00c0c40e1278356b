#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft, broker + controller in one JVM) on 127.0.0.1,
# built from the official jars on Maven Central: the Apache tarball cannot be downloaded
# where silkwatch is developed and tested, Maven Central can.
#
#   kafka.sh fetch                        jars into docker/kafka/lib/ (a no-op once cached)
#   kafka.sh start                        background broker; waits until it answers
#   kafka.sh stop                         stops the broker that `start` left, by its pid
#   kafka.sh run DATA_DIR PORT CTRL_PORT  foreground broker (the pytest fixture uses this)
#
# start/stop read KAFKA_PORT (default 19092), KAFKA_CONTROLLER_PORT (19093) and
# KAFKA_DATA_DIR (default ${TMPDIR:-/tmp}/silkwatch-kafka-$KAFKA_PORT); all read
# KAFKA_JVM_OPTS (default -XX:TieredStopAtLevel=1 -Xms128m -Xmx512m -XX:G1HeapRegionSize=4m).
# Java 17+ and Maven are needed (scripts/setup.sh installs them on a fresh machine).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="$HERE/lib"
STAMP="$LIB/.pom.sha256"
READY_LINE="Kafka Server started"
# C1 only (TieredStopAtLevel=1) halves the CPU a start costs (about 6 -> 3 CPU-seconds for
# the broker, 2 -> 1 for the format), which is what a start waits for on 2 shared cores;
# tests move little data. Set KAFKA_JVM_OPTS to tune (e.g. drop it for a throughput run).
# 4 MiB G1 regions: with the default 1 MiB every produce request over 512 KiB (a frame
# of 8,192 flows is 524 KiB) is a "humongous" object that goes straight to the old
# generation and keeps G1's concurrent marking busy (0.18 of 0.86 CPU-s per 2 M flows).
read -r -a JVM_OPTS <<<"${KAFKA_JVM_OPTS:--XX:TieredStopAtLevel=1 -Xms128m -Xmx512m -XX:G1HeapRegionSize=4m}"

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

pom_hash() {
    sha256sum "$HERE/pom.xml" | cut -d' ' -f1
}

# Copy the broker's runtime jars from Maven Central into lib/. The stamp holds the hash of
# the pom they came from, so editing a version in pom.xml fetches again.
fetch() {
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(pom_hash)" ]]; then
        return 0
    fi
    # Two test sessions starting at once must not both rewrite lib/: the second waits here,
    # then finds the stamp the first one wrote.
    exec 9>"${TMPDIR:-/tmp}/silkwatch-kafka-fetch.lock"
    flock 9
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(pom_hash)" ]]; then
        exec 9>&-
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found: apt-get install -y maven openjdk-17-jre-headless"
    rm -rf "$LIB"
    mkdir -p "$LIB"
    # Maven's output only matters when it fails.
    if ! mvn -B -f "$HERE/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIB" >"$LIB/mvn.log" 2>&1; then
        tail -n 30 "$LIB/mvn.log" >&2
        die "mvn could not fetch the Kafka jars listed in $HERE/pom.xml (log: $LIB/mvn.log)"
    fi
    pom_hash >"$STAMP"
    exec 9>&- # unlock, and keep the broker that `start` runs next from inheriting the lock
}

JAVA=(java "${JVM_OPTS[@]}" -cp "$LIB/*" -Dlog4j2.configurationFile="$HERE/log4j2.properties")

# Write DATA_DIR/server.properties and format DATA_DIR/logs unless a previous run did.
prepare() {
    local data_dir="$1" port="$2" controller_port="$3"
    mkdir -p "$data_dir/logs"
    sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
        -e "s|@LOG_DIR@|$data_dir/logs|g" "$HERE/server.properties.in" >"$data_dir/server.properties"
    if [[ ! -f "$data_dir/logs/meta.properties" ]]; then
        # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding; making it
        # here saves the JVM start of `StorageTool random-uuid`. Like Kafka's Uuid.randomUuid,
        # never one starting with "-": the tool would read it as an option (1 start in 64).
        local cluster_id="-"
        while [[ "$cluster_id" == -* ]]; do
            cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
        done
        "${JAVA[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
            -c "$data_dir/server.properties" >"$data_dir/format.log" 2>&1 ||
            die "formatting $data_dir/logs failed: $(cat "$data_dir/format.log")"
    fi
}

run() {
    [[ $# -eq 3 ]] || die "usage: kafka.sh run DATA_DIR PORT CONTROLLER_PORT"
    fetch
    prepare "$@"
    # exec: the caller's pid is the broker's, so stopping by pid stops the JVM.
    exec "${JAVA[@]}" -Djava.awt.headless=true kafka.Kafka "$1/server.properties"
}

defaults() {
    PORT="${KAFKA_PORT:-19092}"
    CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
    DATA_DIR="${KAFKA_DATA_DIR:-${TMPDIR:-/tmp}/silkwatch-kafka-$PORT}"
    PID_FILE="$DATA_DIR/kafka.pid"
    LOG_FILE="$DATA_DIR/kafka.log"
}

start() {
    defaults
    if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        die "a broker is already running (pid $(cat "$PID_FILE"), data in $DATA_DIR)"
    fi
    fetch
    mkdir -p "$DATA_DIR"
    : >"$LOG_FILE" # before the fork, so the wait below cannot read the last run's log
    "$0" run "$DATA_DIR" "$PORT" "$CONTROLLER_PORT" >"$LOG_FILE" 2>&1 &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    local waited_ds=0
    until grep -q "$READY_LINE" "$LOG_FILE" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$LOG_FILE" >&2
            die "the broker exited during start-up; log: $LOG_FILE"
        fi
        if ((waited_ds >= 600)); then
            tail -n 40 "$LOG_FILE" >&2
            kill "$pid" 2>/dev/null || true
            die "the broker did not start within 60 s; log: $LOG_FILE"
        fi
        sleep 0.1
        waited_ds=$((waited_ds + 1))
    done
    echo "kafka on 127.0.0.1:$PORT (pid $pid, data and log in $DATA_DIR)"
}

stop() {
    defaults
    [[ -f "$PID_FILE" ]] || die "no $PID_FILE: no broker was started with these settings"
    local pid
    pid="$(cat "$PID_FILE")"
    if kill "$pid" 2>/dev/null; then
        # A controlled shutdown takes a few seconds; SIGKILL only after 30 s.
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    echo "kafka stopped (pid $pid)"
}

case "${1:-}" in
fetch) fetch ;;
run) shift && run "$@" ;;
start) start ;;
stop) stop ;;
*) die "usage: kafka.sh fetch | start | stop | run DATA_DIR PORT CONTROLLER_PORT" ;;
esac
