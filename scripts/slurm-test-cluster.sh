#!/usr/bin/env bash
# Bring up / tear down a real single-node Slurm (22.05, Debian 12 packages) for
# integration tests: munged, MariaDB, slurmdbd, slurmctld and slurmd, all run
# as root without systemd.
#
# Usage: scripts/slurm-test-cluster.sh up|down|status|set-max-submit N|none [USER]
# See usage() below.
set -euo pipefail

readonly TAG='[slurm-test-cluster]'
readonly CLUSTER=orchtest
readonly ACCOUNT=orchtest
readonly PACKAGES=(slurm-wlm munge slurmdbd mariadb-server procps)

readonly SLURM_ETC=/etc/slurm
readonly SLURM_CONF=$SLURM_ETC/slurm.conf
readonly SLURMDBD_CONF=$SLURM_ETC/slurmdbd.conf
readonly LOG_DIR=/var/log/slurm
readonly MYSQL_LOG_DIR=/var/log/mysql
readonly MYSQL_LOG=$MYSQL_LOG_DIR/error.log
readonly STATE_DIR=/var/spool/slurmctld
readonly SPOOL_DIR=/var/spool/slurmd
readonly SLURMCTLD_PID=/run/slurmctld.pid
readonly SLURMD_PID=/run/slurmd.pid
readonly SLURMDBD_PID=/run/slurmdbd.pid
readonly MUNGED_PID=/run/munge/munged.pid
readonly MYSQLD_PID=/run/mysqld/mysqld.pid
readonly DB_NAME=slurm_acct_db
readonly DB_USER=slurm
readonly DB_PASS=orchtest-slurmdbd

# Bounded waits, in seconds (override from the environment if a machine is slow).
WAIT_SECS=${SLURM_TEST_WAIT_SECS:-60}

log() { printf '%s %s\n' "$TAG" "$*"; }
warn() { printf '%s WARNING: %s\n' "$TAG" "$*" >&2; }
die() {
    printf '%s ERROR: %s\n' "$TAG" "$*" >&2
    exit 1
}

usage() {
    cat <<EOF
Usage: $0 COMMAND

Commands:
  up                   install packages if missing (apt-get), write configs, start
                       munged, MariaDB, slurmdbd, slurmctld and slurmd, wait until
                       the node is idle and run a smoke job. Idempotent.
  down                 stop slurmd, slurmctld, slurmdbd, MariaDB and munged.
  status               show sinfo and which daemons run.
  set-max-submit N|none [USER]
                       set MaxSubmitJobs=N on USER's associations (default root;
                       'none' removes the limit) and wait until slurmctld sees it.

Cluster: ClusterName=$CLUSTER, account $ACCOUNT, partitions debug (default,
no time limit) and short (MaxTime 10 min), MaxArraySize=11 (indices 0..10).
Logs: $LOG_DIR/*.log, $MYSQL_LOG.
Env: SLURM_TEST_WAIT_SECS (default 60) bounds each wait.
EOF
}

# ---------------------------------------------------------------------------
# helpers

# wait_for DESCRIPTION TIMEOUT_SECS CMD...: poll CMD every second until it succeeds.
wait_for() {
    local desc=$1 limit=$2
    shift 2
    local start=$SECONDS
    while ! "$@" >/dev/null 2>&1; do
        if ((SECONDS - start >= limit)); then
            printf '%s ERROR: timed out after %ss waiting for %s\n' "$TAG" "$limit" "$desc" >&2
            return 1
        fi
        sleep 1
    done
    log "$desc: ok after $((SECONDS - start))s"
}

# pid_alive PID NAME: PID runs and its command name is NAME.
pid_alive() {
    local pid=$1 name=$2 comm
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]]
}

# daemon_pids NAME PIDFILE: print the pids of daemon NAME (pid file first,
# then any other process with exactly that command name).
daemon_pids() {
    local name=$1 pidfile=$2 pid
    {
        if [[ -s $pidfile ]]; then
            pid=$( { tr -dc '0-9' <"$pidfile"; } 2>/dev/null || true)
            if pid_alive "$pid" "$name"; then echo "$pid"; fi
        fi
        pgrep -x "$name" || true
    } | sort -un
}

is_running() {
    [[ -n $(daemon_pids "$1" "$2") ]]
}

# stop_daemon NAME PIDFILE: SIGTERM, wait up to 30 s, then SIGKILL.
stop_daemon() {
    local name=$1 pidfile=$2 pids i
    pids=$(daemon_pids "$name" "$pidfile")
    if [[ -z $pids ]]; then
        log "$name: not running"
        rm -f "$pidfile"
        return 0
    fi
    log "stopping $name (pid $(paste -sd' ' <<<"$pids"))"
    # shellcheck disable=SC2086 # pids is a whitespace-separated list
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        is_running "$name" "$pidfile" || break
        sleep 1
    done
    pids=$(daemon_pids "$name" "$pidfile")
    if [[ -n $pids ]]; then
        warn "$name did not stop within 30s, sending SIGKILL"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 1
    fi
    rm -f "$pidfile"
}

short_host() {
    local h
    h=$(hostname -s 2>/dev/null || uname -n)
    echo "${h%%.*}"
}

show_logs() {
    local f
    for f in "$LOG_DIR"/*.log /var/log/munge/munged.log "$MYSQL_LOG"; do
        [[ -s $f ]] || continue
        printf '%s ---- last 30 lines of %s ----\n' "$TAG" "$f" >&2
        tail -n 30 "$f" >&2 || true
    done
}

on_exit() {
    local rc=$?
    if ((rc != 0)); then
        printf '%s FAILED (exit %s); log tails follow\n' "$TAG" "$rc" >&2
        show_logs
    fi
    return "$rc"
}

# ---------------------------------------------------------------------------
# install

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "packages already installed: ${PACKAGES[*]}"
        return 0
    fi
    log "installing: ${missing[*]} (apt-get update first)"
    local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
    export DEBIAN_FRONTEND=noninteractive
    local aptlog=/tmp/slurm-test-cluster-apt.log try
    : >"$aptlog"
    for try in 1 2 3; do
        if "${apt[@]}" update >>"$aptlog" 2>&1 &&
            "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1; then
            break
        fi
        if ((try == 3)); then
            tail -n 30 "$aptlog" >&2
            die "apt-get update/install failed 3 times (log: $aptlog)"
        fi
        warn "apt-get failed (attempt $try), retrying in 10s"
        sleep 10
    done
    log "packages installed"
}

# ---------------------------------------------------------------------------
# configuration

# install_if_changed SRC DEST MODE: move SRC to DEST if it differs; return 0
# when DEST changed, 1 when it was already identical.
install_if_changed() {
    local src=$1 dest=$2 mode=$3
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        rm -f "$src"
        chmod "$mode" "$dest"
        return 1
    fi
    install -m "$mode" -o root -g root "$src" "$dest"
    rm -f "$src"
    log "wrote $dest"
    return 0
}

SLURM_CONF_CHANGED=0
SLURMDBD_CONF_CHANGED=0

write_configs() {
    local host cpus detected mem tmp
    host=$(short_host)
    cpus=$(nproc)
    mkdir -p "$SLURM_ETC" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
    chmod 755 "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
    # RealMemory must not exceed what slurmd detects, else the node is drained.
    detected=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
    if [[ -z $detected ]]; then
        detected=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    fi
    mem=$((detected * 9 / 10))
    ((mem >= 512)) || mem=$((detected - 64))

    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by scripts/slurm-test-cluster.sh - single-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$SLURMCTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
ReturnToService=2
MaxArraySize=11
MinJobAge=300
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=5
# Accounting through slurmdbd (MariaDB) so sacct and association limits work.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageEnforce=associations,limits
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=$host MaxTime=00:10:00 State=UP
EOF
    if install_if_changed "$tmp" "$SLURM_CONF" 644; then SLURM_CONF_CHANGED=1; fi

    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by scripts/slurm-test-cluster.sh - accounting for the test cluster.
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$SLURMDBD_PID
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    if install_if_changed "$tmp" "$SLURMDBD_CONF" 600; then SLURMDBD_CONF_CHANGED=1; fi
}

# ---------------------------------------------------------------------------
# daemons

munge_ok() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

start_munge() {
    mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    chmod 700 /var/lib/munge /var/log/munge /etc/munge
    chown munge:munge /etc/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null 2>&1; then
            runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    if is_running munged "$MUNGED_PID" && munge_ok; then
        log "munged already running"
        return 0
    fi
    stop_daemon munged "$MUNGED_PID"
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    wait_for "munge -n | unmunge" "$WAIT_SECS" munge_ok
}

mysql_ok() {
    mysqladmin --connect-timeout=2 ping >/dev/null 2>&1
}

start_mariadb() {
    mkdir -p /run/mysqld "$MYSQL_LOG_DIR"
    chown mysql:mysql /run/mysqld "$MYSQL_LOG_DIR"
    if mysql_ok; then
        log "MariaDB already running"
    else
        if [[ ! -d /var/lib/mysql/mysql ]]; then
            log "initialising MariaDB data directory"
            mysql_install_db --user=mysql --datadir=/var/lib/mysql >/dev/null
        fi
        log "starting MariaDB (mysqld_safe --user=mysql)"
        setsid -f mysqld_safe --user=mysql --skip-syslog --log-error="$MYSQL_LOG" \
            </dev/null >/dev/null 2>&1
        wait_for "MariaDB ping" "$WAIT_SECS" mysql_ok
    fi
    mysql -u root <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
    log "database $DB_NAME and user $DB_USER ready"
}

dbd_ok() {
    timeout 15 sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1
}

start_slurmdbd() {
    if is_running slurmdbd "$SLURMDBD_PID" && ((SLURMDBD_CONF_CHANGED)); then
        log "slurmdbd.conf changed: restarting slurmdbd"
        stop_daemon slurmdbd "$SLURMDBD_PID"
    fi
    if is_running slurmdbd "$SLURMDBD_PID"; then
        log "slurmdbd already running"
    else
        log "starting slurmdbd"
        slurmdbd 2>>"$LOG_DIR/slurmdbd.start.log"
    fi
    wait_for "slurmdbd answering sacctmgr" "$WAIT_SECS" dbd_ok
}

# sacct_has KIND NAME [WHERE...]: sacctmgr lists an entity called NAME.
sacct_has() {
    local kind=$1 name=$2
    shift 2
    timeout 15 sacctmgr -n -P list "$kind" "$@" format="$kind" 2>/dev/null | grep -qx "$name"
}

register_accounting() {
    if sacct_has cluster "$CLUSTER"; then
        log "cluster $CLUSTER already registered"
    else
        log "registering cluster $CLUSTER"
        timeout 30 sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    if sacct_has account "$ACCOUNT"; then
        log "account $ACCOUNT exists"
    else
        log "adding account $ACCOUNT"
        timeout 30 sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
            description="orchestrator tests" organization=orchtest >/dev/null
    fi
    if timeout 15 sacctmgr -n -P show assoc cluster="$CLUSTER" account="$ACCOUNT" user=root \
        format=user 2>/dev/null | grep -qx root; then
        log "user root already in account $ACCOUNT"
    else
        log "adding user root to account $ACCOUNT"
        timeout 30 sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
    fi
    if [[ $(timeout 15 sacctmgr -n -P list user root format=defaultaccount 2>/dev/null) != "$ACCOUNT" ]]; then
        timeout 30 sacctmgr -i modify user root set defaultaccount="$ACCOUNT" >/dev/null
    fi
    wait_for "sacctmgr lists cluster $CLUSTER" "$WAIT_SECS" sacct_has cluster "$CLUSTER"
}

ctld_ok() {
    timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'
}

node_state() {
    timeout 10 sinfo -h -n "$(short_host)" -o %T 2>/dev/null | head -n 1
}

node_ready() {
    [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]
}

start_slurm() {
    if ((SLURM_CONF_CHANGED)); then
        if is_running slurmd "$SLURMD_PID" || is_running slurmctld "$SLURMCTLD_PID"; then
            log "slurm.conf changed: restarting slurmctld and slurmd"
        fi
        stop_daemon slurmd "$SLURMD_PID"
        stop_daemon slurmctld "$SLURMCTLD_PID"
    fi
    if is_running slurmctld "$SLURMCTLD_PID"; then
        log "slurmctld already running"
    else
        log "starting slurmctld"
        slurmctld 2>>"$LOG_DIR/slurmctld.start.log"
    fi
    wait_for "slurmctld ping" "$WAIT_SECS" ctld_ok
    if is_running slurmd "$SLURMD_PID"; then
        log "slurmd already running"
    else
        log "starting slurmd"
        slurmd 2>>"$LOG_DIR/slurmd.start.log"
    fi
    local start=$SECONDS state resumed=0
    while ! node_ready; do
        state=$(node_state)
        # A node left down/drained by an earlier run: bring it back once.
        if ((!resumed)) && [[ $state =~ ^(down|drain|drained|draining|fail)\*?$ ]]; then
            log "node is '$state': resuming it"
            timeout 10 scontrol update nodename="$(short_host)" state=resume || true
            resumed=1
        fi
        if ((SECONDS - start >= WAIT_SECS)); then
            timeout 10 sinfo -N -l >&2 || true
            die "node not idle after ${WAIT_SECS}s (state '${state:-?}')"
        fi
        sleep 1
    done
    log "node $(short_host) is $(node_state) after $((SECONDS - start))s"
}

smoke_test() {
    local id state start=$SECONDS
    id=$(timeout 30 sbatch --parsable -J slurm-test-cluster-smoke -o /dev/null -e /dev/null \
        -t 1 --wrap true) || die "smoke sbatch failed"
    id=${id%%;*}
    log "smoke job $id submitted"
    while :; do
        state=$(timeout 15 sacct -X -n -P -j "$id" -o State 2>/dev/null | head -n 1 || true)
        [[ $state == COMPLETED ]] && break
        case $state in
        FAILED* | CANCELLED* | TIMEOUT* | NODE_FAIL* | OUT_OF_MEMORY* | BOOT_FAIL*)
            die "smoke job $id ended $state"
            ;;
        esac
        if ((SECONDS - start >= WAIT_SECS)); then
            timeout 10 squeue -j "$id" >&2 || true
            die "smoke job $id not COMPLETED in sacct after ${WAIT_SECS}s (state '${state:-none}')"
        fi
        sleep 1
    done
    log "smoke job $id COMPLETED in sacct after $((SECONDS - start))s"
}

max_submit_values() { # prints MaxSubmit of each of USER's associations
    timeout 15 sacctmgr -n -P show assoc cluster="$CLUSTER" user="$1" format=MaxSubmit
}

summary() {
    local host
    host=$(short_host)
    log "---- cluster $CLUSTER is up ----"
    log "$(scontrol --version 2>/dev/null || echo 'slurm ?')"
    log "node: $(timeout 10 sinfo -h -N -o '%N %T cpus=%c mem=%mMB' | head -n 1)"
    log "partitions: $(timeout 10 sinfo -h -o '%P(%l)' | sort -u | tr '\n' ' ')"
    log "MaxArraySize: $(timeout 10 scontrol show config | awk -F' = ' '/^MaxArraySize/ {print $2}')"
    log "root MaxSubmit per association: '$(max_submit_values root | paste -sd,)' (empty = none)"
    log "controller $host(127.0.0.1):6817, slurmdbd localhost:6819, logs in $LOG_DIR"
}

# ---------------------------------------------------------------------------
# commands

cmd_up() {
    local t0=$SECONDS
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    trap on_exit EXIT
    install_packages
    write_configs
    start_munge
    start_mariadb
    start_slurmdbd
    register_accounting
    start_slurm
    # A test that died may have left a submit limit behind: start from none.
    if ! limit_in_dbd root ''; then
        log "root has a MaxSubmitJobs limit left over: resetting it to none"
        cmd_set_max_submit none root
    fi
    smoke_test
    summary
    log "up finished in $((SECONDS - t0))s"
}

cmd_down() {
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$SLURMCTLD_PID"
    stop_daemon slurmdbd "$SLURMDBD_PID"
    if command -v mysqladmin >/dev/null 2>&1 && mysql_ok; then
        log "stopping MariaDB (mysqladmin shutdown)"
        timeout 60 mysqladmin shutdown || warn "mysqladmin shutdown failed"
        # mysqld_safe exits by itself once the server has stopped.
        local i
        for ((i = 0; i < 10; i++)); do
            is_running mysqld_safe /nonexistent || break
            sleep 1
        done
    fi
    stop_daemon mariadbd "$MYSQLD_PID"
    stop_daemon mysqld "$MYSQLD_PID"
    stop_daemon mysqld_safe /nonexistent
    stop_daemon munged "$MUNGED_PID"
    log "down"
}

cmd_status() {
    local d rc=0
    local -A pidfile=([munged]=$MUNGED_PID [mariadbd]=$MYSQLD_PID [slurmdbd]=$SLURMDBD_PID
        [slurmctld]=$SLURMCTLD_PID [slurmd]=$SLURMD_PID)
    for d in munged mariadbd slurmdbd slurmctld slurmd; do
        if is_running "$d" "${pidfile[$d]}"; then
            log "$(printf '%-10s running (pid %s)' "$d" "$(daemon_pids "$d" "${pidfile[$d]}" | paste -sd' ')")"
        else
            log "$(printf '%-10s NOT running' "$d")"
            rc=1
        fi
    done
    if command -v sinfo >/dev/null 2>&1 && ctld_ok; then
        log "sinfo:"
        timeout 10 sinfo || true
        log "root MaxSubmit per association: '$(max_submit_values root 2>/dev/null | paste -sd,)' (empty = none)"
    else
        log "slurmctld not answering"
        rc=1
    fi
    return "$rc"
}

# assoc_mgr_max_submit USER: MaxSubmitJobs limit of each of USER's associations
# as slurmctld sees them ('' when unlimited).
assoc_mgr_max_submit() {
    timeout 15 scontrol show assoc_mgr users="$1" flags=assoc 2>/dev/null |
        awk -v user="$1" '
            /^ClusterName=/ { mine = index($0, " UserName=" user "(") > 0 }
            mine && match($0, /MaxSubmitJobs=[^ ]*/) {
                v = substr($0, RSTART + 14, RLENGTH - 14)
                sub(/\(.*/, "", v)
                if (v == "N") v = ""
                print v
            }'
}

# all_lines_equal VALUE: stdin is non-empty and each line equals VALUE.
all_lines_equal() {
    local want=$1 line n=0
    while IFS= read -r line; do
        [[ $line == "$want" ]] || return 1
        n=$((n + 1))
    done
    ((n > 0))
}

limit_in_dbd() { max_submit_values "$1" | all_lines_equal "$2"; }
limit_in_ctld() { assoc_mgr_max_submit "$1" | all_lines_equal "$2"; }

cmd_set_max_submit() {
    local arg=${1:-} user=${2:-root} value want
    case $arg in
    none | NONE | -1) value=-1 want='' ;;
    '' | *[!0-9]*) die "set-max-submit needs a non-negative integer or 'none' (got '$arg')" ;;
    *) value=$arg want=$arg ;;
    esac
    dbd_ok || die "slurmdbd is not answering; run '$0 up' first"
    if limit_in_dbd "$user" "$want"; then
        log "MaxSubmitJobs for $user already '${want:-none}' in slurmdbd"
    else
        log "sacctmgr -i modify user $user set MaxSubmitJobs=$value"
        timeout 30 sacctmgr -i modify user "$user" set MaxSubmitJobs="$value" >/dev/null
        wait_for "slurmdbd reports MaxSubmit='$want' for $user" "$WAIT_SECS" limit_in_dbd "$user" "$want"
    fi
    wait_for "slurmctld sees MaxSubmitJobs='${want:-none}' for $user" "$WAIT_SECS" \
        limit_in_ctld "$user" "$want"
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    set-max-submit) cmd_set_max_submit "$@" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
