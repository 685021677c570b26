#!/usr/bin/env bash
# shellcheck disable=SC2317  # the <service>_<action> functions are called indirectly, from main
# Dev/CI services for Concord: Orthanc (+DICOMweb), PostgreSQL, Redis.
#
#   platform/services.sh {start|stop|status|wait} [orthanc|postgres|redis|all]   (default: all)
#
# Orthanc runs as this repository's own daemon: config, storage, pid and log all live under var/orthanc/.
# PostgreSQL and Redis are the machine's: when they already answer on 127.0.0.1 nothing is done; otherwise
# they are started with the machine's commands, and `stop` only stops what this script started.
#
# Environment (all optional):
#   ORTHANC_PORT (8042)  ORTHANC_DICOM_PORT (4242, DICOM server is disabled)  ORTHANC_BIN (Orthanc)
#   ORTHANC_DICOMWEB_PLUGIN (/usr/share/orthanc/plugins/libOrthancDicomWeb.so)
#   ORTHANC_HTTP_THREADS (256: Orthanc's HTTP server holds one thread per open keep-alive connection, so it
#     needs more threads than its clients keep connections open; see platform/README.md)
#   POSTGRES_PORT (5432)  POSTGRES_DB (concord)  POSTGRES_USER (postgres)  REDIS_PORT (6379)
#   SERVICES_WAIT_TRIES (60) × SERVICES_WAIT_INTERVAL_S (0.5)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$REPO/var"
ORTHANC_DIR="$VAR/orthanc"
ORTHANC_PORT="${ORTHANC_PORT:-8042}"
ORTHANC_DICOM_PORT="${ORTHANC_DICOM_PORT:-4242}"
ORTHANC_HTTP_THREADS="${ORTHANC_HTTP_THREADS:-256}"
ORTHANC_BIN="${ORTHANC_BIN:-Orthanc}"
ORTHANC_DICOMWEB_PLUGIN="${ORTHANC_DICOMWEB_PLUGIN:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}"
ORTHANC_PID="$ORTHANC_DIR/orthanc.pid"
ORTHANC_LOG="$ORTHANC_DIR/orthanc.log"
ORTHANC_CONF="$ORTHANC_DIR/orthanc.json"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
POSTGRES_DB="${POSTGRES_DB:-concord}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_DIR="$VAR/redis"
MARKS="$VAR/services"
WAIT_TRIES="${SERVICES_WAIT_TRIES:-60}"
WAIT_INTERVAL_S="${SERVICES_WAIT_INTERVAL_S:-0.5}"

log() { printf '%s\n' "services.sh: $*"; }
die() { printf '%s\n' "services.sh: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- Orthanc

orthanc_url() { printf 'http://127.0.0.1:%s' "$ORTHANC_PORT"; }

orthanc_answers() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 2 "$(orthanc_url)/system" >/dev/null 2>&1
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "$(orthanc_url)/system" >/dev/null 2>&1
    fi
}

orthanc_pid() {
    # Print the pid of the Orthanc this script started, if that process is still alive.
    [[ -f "$ORTHANC_PID" ]] || return 1
    local pid
    pid="$(cat "$ORTHANC_PID")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s' "$pid"
}

orthanc_render_config() {
    [[ "$ORTHANC_HTTP_THREADS" =~ ^[1-9][0-9]*$ ]] \
        || die "ORTHANC_HTTP_THREADS must be a positive whole number, not '$ORTHANC_HTTP_THREADS'"
    mkdir -p "$ORTHANC_DIR/db"
    sed -e "s|\"@HTTP_PORT@\"|$ORTHANC_PORT|" \
        -e "s|\"@DICOM_PORT@\"|$ORTHANC_DICOM_PORT|" \
        -e "s|\"@HTTP_THREADS@\"|$ORTHANC_HTTP_THREADS|" \
        -e "s|@STORAGE_DIR@|$ORTHANC_DIR/db|g" \
        -e "s|@DICOMWEB_PLUGIN@|$ORTHANC_DICOMWEB_PLUGIN|" \
        "$REPO/platform/orthanc/orthanc.json" >"$ORTHANC_CONF"
}

orthanc_start() {
    # Serialise concurrent starts (parallel test workers): the loser then sees the winner's live pid.
    mkdir -p "$ORTHANC_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$ORTHANC_DIR/.start.lock"
        flock -w 30 9 || die "could not take $ORTHANC_DIR/.start.lock within 30 s"
    fi
    if orthanc_answers; then
        log "orthanc already running on $(orthanc_url)"
        return 0
    fi
    if orthanc_pid >/dev/null; then
        local running_port
        running_port="$(cat "$ORTHANC_DIR/orthanc.port" 2>/dev/null || echo unknown)"
        [[ "$running_port" == "$ORTHANC_PORT" ]] \
            || die "this checkout's Orthanc (pid $(orthanc_pid)) runs on port $running_port, not $ORTHANC_PORT; stop it first"
        log "orthanc already starting (pid $(orthanc_pid)); use 'wait'"
        return 0
    fi
    command -v "$ORTHANC_BIN" >/dev/null 2>&1 \
        || die "Orthanc binary '$ORTHANC_BIN' not found; run platform/install-debs.sh (packages orthanc, orthanc-dicomweb)"
    [[ -f "$ORTHANC_DICOMWEB_PLUGIN" ]] \
        || die "DICOMweb plugin $ORTHANC_DICOMWEB_PLUGIN not found; run platform/install-debs.sh (package orthanc-dicomweb)"
    orthanc_render_config
    rm -f "$ORTHANC_PID"
    # setsid: leave the caller's process group, so a Ctrl-C in the caller's terminal does not stop it.
    setsid "$ORTHANC_BIN" --logfile="$ORTHANC_LOG" "$ORTHANC_CONF" </dev/null >>"$ORTHANC_DIR/orthanc.stdout" 2>&1 9>&- &
    echo $! >"$ORTHANC_PID"
    echo "$ORTHANC_PORT" >"$ORTHANC_DIR/orthanc.port"
    log "orthanc started (pid $!, $(orthanc_url), log $ORTHANC_LOG)"
}

orthanc_stop() {
    local pid
    if ! pid="$(orthanc_pid)"; then
        rm -f "$ORTHANC_PID"
        if orthanc_answers; then
            log "orthanc on $(orthanc_url) was not started by this script (no live pid in $ORTHANC_PID); left running"
        else
            log "orthanc not running"
        fi
        return 0
    fi
    kill "$pid"
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "orthanc (pid $pid) did not stop in 10 s; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$ORTHANC_PID"
    log "orthanc stopped"
}

orthanc_status() {
    if orthanc_answers; then
        local pid
        pid="$(orthanc_pid || echo "not ours")"
        printf '%-9s running  %s (pid %s)\n' orthanc "$(orthanc_url)" "$pid"
    else
        printf '%-9s stopped  %s\n' orthanc "$(orthanc_url)"
        return 1
    fi
}

orthanc_wait() {
    for _ in $(seq 1 "$WAIT_TRIES"); do
        orthanc_answers && { log "orthanc ready on $(orthanc_url)"; return 0; }
        if [[ -f "$ORTHANC_PID" ]] && ! orthanc_pid >/dev/null; then
            tail -n 5 "$ORTHANC_LOG" >&2 2>/dev/null || true
            die "orthanc exited during start-up (port $ORTHANC_PORT taken? see $ORTHANC_LOG)"
        fi
        sleep "$WAIT_INTERVAL_S"
    done
    die "orthanc did not answer $(orthanc_url)/system after $WAIT_TRIES × ${WAIT_INTERVAL_S}s (see $ORTHANC_LOG)"
}

# ---------------------------------------------------------------- PostgreSQL

postgres_answers() { pg_isready -q -h 127.0.0.1 -p "$POSTGRES_PORT" >/dev/null 2>&1; }

postgres_psql() { psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -v ON_ERROR_STOP=1 -qtA "$@"; }

postgres_ensure_db() {
    postgres_psql -d postgres -c 'SELECT 1' >/dev/null 2>&1 \
        || die "cannot connect to PostgreSQL as '$POSTGRES_USER' on 127.0.0.1:$POSTGRES_PORT (the role must exist with trust auth on 127.0.0.1)"
    if [[ "$(postgres_psql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'")" != 1 ]]; then
        postgres_psql -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" || die "cannot create database $POSTGRES_DB"
        log "postgres: created database $POSTGRES_DB"
    fi
}

postgres_start() {
    if ! postgres_answers; then
        command -v pg_ctlcluster >/dev/null 2>&1 || die "PostgreSQL is not answering on 127.0.0.1:$POSTGRES_PORT and pg_ctlcluster is not installed"
        local version
        version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
        [[ -n "$version" ]] || die "PostgreSQL is not answering on 127.0.0.1:$POSTGRES_PORT and no cluster exists under /etc/postgresql"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start \
            || die "pg_ctlcluster $version main start failed"
        mkdir -p "$MARKS" && echo "$version" >"$MARKS/postgres-$POSTGRES_PORT.started"
        log "postgres $version started"
        postgres_wait
    else
        log "postgres already running on 127.0.0.1:$POSTGRES_PORT"
    fi
    postgres_ensure_db
}

postgres_stop() {
    if [[ -f "$MARKS/postgres-$POSTGRES_PORT.started" ]]; then
        pg_ctlcluster --skip-systemctl-redirect "$(cat "$MARKS/postgres-$POSTGRES_PORT.started")" main stop
        rm -f "$MARKS/postgres-$POSTGRES_PORT.started"
        log "postgres stopped"
    else
        log "postgres was not started by this script; left as it is"
    fi
}

postgres_status() {
    if postgres_answers; then
        printf '%-9s running  127.0.0.1:%s\n' postgres "$POSTGRES_PORT"
    else
        printf '%-9s stopped  127.0.0.1:%s\n' postgres "$POSTGRES_PORT"
        return 1
    fi
}

postgres_wait() {
    for _ in $(seq 1 "$WAIT_TRIES"); do
        postgres_answers && return 0
        sleep "$WAIT_INTERVAL_S"
    done
    die "postgres did not answer on 127.0.0.1:$POSTGRES_PORT after $WAIT_TRIES × ${WAIT_INTERVAL_S}s"
}

# ---------------------------------------------------------------- Redis

redis_answers() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_start() {
    if redis_answers; then
        log "redis already running on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    command -v redis-server >/dev/null 2>&1 || die "Redis is not answering on 127.0.0.1:$REDIS_PORT and redis-server is not installed"
    mkdir -p "$REDIS_DIR" "$MARKS"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis-$REDIS_PORT.pid" --logfile "$REDIS_DIR/redis-$REDIS_PORT.log" \
        || die "redis-server failed to start (see $REDIS_DIR/redis-$REDIS_PORT.log)"
    touch "$MARKS/redis-$REDIS_PORT.started"
    log "redis started on 127.0.0.1:$REDIS_PORT"
}

redis_stop() {
    if [[ -f "$MARKS/redis-$REDIS_PORT.started" ]]; then
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        rm -f "$MARKS/redis-$REDIS_PORT.started"
        log "redis stopped"
    else
        log "redis was not started by this script; left as it is"
    fi
}

redis_status() {
    if redis_answers; then
        printf '%-9s running  127.0.0.1:%s\n' redis "$REDIS_PORT"
    else
        printf '%-9s stopped  127.0.0.1:%s\n' redis "$REDIS_PORT"
        return 1
    fi
}

redis_wait() {
    for _ in $(seq 1 "$WAIT_TRIES"); do
        redis_answers && return 0
        sleep "$WAIT_INTERVAL_S"
    done
    die "redis did not answer on 127.0.0.1:$REDIS_PORT after $WAIT_TRIES × ${WAIT_INTERVAL_S}s"
}

# ---------------------------------------------------------------- main

usage() {
    echo "usage: $0 {start|stop|status|wait} [orthanc|postgres|redis|all]" >&2
    exit 2
}

main() {
    local action="${1:-}" target="${2:-all}" services=() rc=0
    [[ "$action" =~ ^(start|stop|status|wait)$ ]] || usage
    case "$target" in
        all) services=(postgres redis orthanc) ;;
        orthanc | postgres | redis) services=("$target") ;;
        *) usage ;;
    esac
    for service in "${services[@]}"; do
        "${service}_${action}" || rc=$?
    done
    if [[ "$action" == status && $rc -ne 0 ]]; then
        exit 3
    fi
    exit "$rc"
}

main "$@"
