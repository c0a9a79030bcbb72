#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the tests marked `slurm` (`make cluster`; .ci/run calls it).
# Needs root and apt-get (Debian 12): installs what is missing (slurm-wlm 22.05 and munge; also Debian's
# PostgreSQL 15 server, whose binaries the PostgreSQL tests use to start their own throwaway server), writes a munge
# key if there is none, starts munged, writes /etc/slurm/slurm.conf, starts slurmctld and slurmd (directly: no
# systemd needed) and waits until `sinfo` shows the node idle. Every address is loopback: the controller and the
# node have a loopback address, and both daemons bind to it only (when the host name resolves to it). Idempotent:
# a second run checks and does nothing.
set -euo pipefail

TIMEOUT_S=${SLURM_UP_TIMEOUT_S:-90}
PACKAGES=(slurm-wlm munge postgresql)
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
CTLD_STATE=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

say() { echo "slurm: $*"; }
die() {
    echo "slurm: ERROR: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (installs packages with apt-get and starts daemons): run it as root"

# --- packages: apt-get update only when something must be installed
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- munge: a key (owned by munge, mode 400) and munged, run as the munge user
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "writing /etc/munge/munge.key"
    (umask 0377 && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none)
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || die "munged does not answer; its log: $(tail -20 /var/log/munge/munged.log 2>&1)"
fi

# --- slurm.conf: this host, all its CPUs, ~80% of its memory, one partition `debug`, everything on loopback.
# With NoInAddrAny the daemons bind to the address the host name resolves to; that is only used when it is a
# loopback one (127.0.0.1 here, 127.0.1.1 on a stock Debian), which then is the controller's and the node's address.
# Otherwise they stay on 127.0.0.1 and listen on every interface (all traffic still goes to 127.0.0.1).
host=$(hostname -s)
resolved=$(getent ahostsv4 "$(hostname)" 2>/dev/null | awk 'NR == 1 {print $1}' || true)
if [[ $resolved == 127.* ]]; then
    address=$resolved
    bind="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
else
    address=127.0.0.1
    bind="# CommunicationParameters=NoCtldInAddrAny,NoInAddrAny: not set, $(hostname) does not resolve to loopback"
fi
cpus=$(nproc)
memory_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$CTLD_STATE" "$SLURMD_SPOOL"
new_conf=$(
    cat <<EOF
# Written by .ci/slurm.sh: a one-node SLURM cluster for the test suite, on loopback only.
ClusterName=lattice
SlurmctldHost=$host($address)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Bind to the (loopback) address of this host name instead of every interface.
$bind
SlurmctldPort=6817
SlurmdPort=6818
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$CTLD_STATE
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# SIGTERM, then SIGKILL this many seconds later (scancel, walltime); finished jobs leave scontrol after MinJobAge s.
KillWait=10
MinJobAge=30
OverTimeLimit=0
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$host NodeAddr=$address NodeHostname=$host CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)

running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() { # a daemon of ours, by its pid file
    running "$1" || return 0
    kill "$(cat "$1")"
    for _ in $(seq 100); do
        running "$1" || return 0
        sleep 0.2
    done
    die "$2 (pid $(cat "$1")) did not stop"
}

if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$new_conf" ]]; then
    say "writing $CONF"
    stop "$SLURMD_PID" slurmd
    stop "$CTLD_PID" slurmctld
    printf '%s\n' "$new_conf" >"$CONF"
    chmod 0644 "$CONF"
fi

# --- the daemons (they fork into the background and write their pid files)
if ! running "$CTLD_PID"; then
    say "starting slurmctld"
    slurmctld
fi
if ! running "$SLURMD_PID"; then
    say "starting slurmd"
    slurmd
fi

# --- wait until the node is idle (or busy with jobs: mixed, allocated)
deadline=$((SECONDS + TIMEOUT_S))
resumed=0
state=""
while ((SECONDS < deadline)); do
    state=$(timeout 5 sinfo -h -N -n "$host" -o %t 2>/dev/null | head -1 || true)
    case $state in
    idle | mix | alloc) break ;;
    drain* | drng* | down*) # left drained or down by an earlier run: ask once to put it back in service
        if ((!resumed)); then
            scontrol update NodeName="$host" State=RESUME || true
            resumed=1
        fi
        ;;
    esac
    state=""
    sleep 1
done
if [[ -z $state ]]; then
    echo "slurm: ERROR: the node $host is not idle after ${TIMEOUT_S} s" >&2
    timeout 5 sinfo -N -l >&2 || true
    for log in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        echo "----- $log (last 40 lines)" >&2
        tail -40 "$log" >&2 2>/dev/null || echo "(missing)" >&2
    done
    exit 1
fi
say "one-node cluster up (node $host, $cpus CPUs, partition debug)"
