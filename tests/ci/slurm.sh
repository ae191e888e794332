#!/usr/bin/env bash
# A real single-node Slurm cluster for ctui's tests (Debian's slurm-wlm + munge, run as root).
#   bash tests/ci/slurm.sh up      install if missing, start munged/slurmctld/slurmd, wait for sinfo
#   bash tests/ci/slurm.sh down    stop what `up` started
#   WITH_DBD=1 bash tests/ci/slurm.sh up   also MariaDB + slurmdbd, so `sacct` works
# The node has 2 CPUs (two 2-CPU jobs → the second one PENDING), short kill waits and no grace
# past the time limit, so a `--time=1` job times out about a minute after it starts.
# /etc/slurm/slurm.conf points at the generated config (if no other config is there), so the
# Slurm commands work without SLURM_CONF; `down` removes that link again.
set -euo pipefail
P=${CTUI_SLURM_DIR:-/tmp/ctui-slurm}; H=$(hostname -s); WITH_DBD=${WITH_DBD:-0}
export SLURM_CONF=$P/slurm.conf
ETC=/etc/slurm/slurm.conf
t0=$(date +%s.%N); el(){ printf '[%5.2fs]' "$(echo "$(date +%s.%N)-$t0" | bc)"; }
wait_for(){ for _ in $(seq 300); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; fail "timeout: $1"; }
# a start that does not come up: say so with the logs' last lines, and exit non-zero
fail(){ echo "slurm.sh: $*" >&2; for f in "$P"/log/*; do [ -s "$f" ] && { echo "-- $f" >&2; tail -n 15 "$f" >&2; }; done; exit 1; }

if [ "${1:-up}" = down ]; then
  for f in slurmd slurmctld slurmdbd mariadbd munged; do
    [ -f "$P/$f.fgpid" ] || continue; pid=$(cat "$P/$f.fgpid"); rm -f "$P/$f.fgpid"
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; echo "stopped $f ($pid)"
  done
  [ "$(readlink $ETC 2>/dev/null)" = "$P/slurm.conf" ] && rm -f $ETC
  exit 0
fi
[ "${1:-up}" = up ] || { echo "usage: $0 up|down" >&2; exit 2; }

if [ -f "$P/slurmctld.fgpid" ] && kill -0 "$(cat "$P/slurmctld.fgpid")" 2>/dev/null \
   && sinfo -h >/dev/null 2>&1; then
  echo "slurm already up; export SLURM_CONF=$SLURM_CONF"; exit 0
fi

pk="slurm-wlm munge bc"; [ "$WITH_DBD" = 1 ] && pk="$pk slurmdbd mariadb-server"
if ! dpkg -s $pk >/dev/null 2>&1; then
  apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pk >/dev/null
fi; echo "$(el) packages"
mkdir -p "$P"/{munge,state,spool,log}; chmod 711 "$P/munge"
[ -f "$P/munge/munge.key" ] || mungekey -c -k "$P/munge/munge.key"; chmod 600 "$P/munge/munge.key"
munged -f --key-file="$P/munge/munge.key" --socket="$P/munge/munge.socket" --pid-file="$P/munged.fgpid" \
       --log-file="$P/log/munged.log" --seed-file="$P/munge/munge.seed"
wait_for "munge -S $P/munge/munge.socket -n | unmunge -S $P/munge/munge.socket"; echo "$(el) munged"

ACCT="AccountingStorageType=accounting_storage/none"
if [ "$WITH_DBD" = 1 ]; then
  [ -d "$P/db" ] || mariadb-install-db --no-defaults --datadir="$P/db" --user=root >"$P/log/mariadb-install.log" 2>&1
  setsid mariadbd --no-defaults --datadir="$P/db" --user=root --socket="$P/mysqld.sock" --bind-address=127.0.0.1 \
    --port=3307 --log-error="$P/log/mariadbd.err" </dev/null >/dev/null 2>&1 & echo $! >"$P/mariadbd.fgpid"
  wait_for "mariadb --no-defaults -S $P/mysqld.sock -uroot -e 'select 1'"
  mariadb --no-defaults -S "$P/mysqld.sock" -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  echo "$(el) mariadbd"
  cat > "$P/slurmdbd.conf" <<C
AuthType=auth/munge
AuthInfo=socket=$P/munge/munge.socket
DbdHost=localhost
SlurmUser=root
LogFile=$P/log/slurmdbd.log
PidFile=$P/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=slurmpw
C
  chmod 600 "$P/slurmdbd.conf"
  setsid slurmdbd -D </dev/null >"$P/log/slurmdbd.out" 2>&1 & echo $! >"$P/slurmdbd.fgpid"
  wait_for "ss -ltn | grep -q ':6819 '"; echo "$(el) slurmdbd"
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePass=$P/munge/munge.socket"
fi

cat > "$P/slurm.conf" <<C
ClusterName=ctui
SlurmctldHost=$H
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$P/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$ACCT
JobCompType=jobcomp/filetxt
JobCompLoc=$P/log/jobcomp.txt
MailProg=/bin/true
MinJobAge=3600
MaxJobCount=20000
OverTimeLimit=0
KillWait=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$P/state
SlurmdSpoolDir=$P/spool
SlurmctldPidFile=$P/slurmctld.pid
SlurmdPidFile=$P/slurmd.pid
SlurmctldLogFile=$P/log/slurmctld.log
SlurmdLogFile=$P/log/slurmd.log
NodeName=$H NodeAddr=127.0.0.1 CPUs=2 RealMemory=$(( $(free -m | awk '/Mem:/{print $2}') * 8 / 10 )) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
C
if [ ! -e $ETC ] || [ "$(readlink $ETC 2>/dev/null)" = "$P/slurm.conf" ]; then
  mkdir -p /etc/slurm; ln -sf "$P/slurm.conf" $ETC
fi
setsid slurmctld -D </dev/null >"$P/log/slurmctld.out" 2>&1 & echo $! >"$P/slurmctld.fgpid"
setsid slurmd -D    </dev/null >"$P/log/slurmd.out" 2>&1    & echo $! >"$P/slurmd.fgpid"
wait_for "sinfo -h -n $H -o %t | grep -q '^idle'"; echo "$(el) slurm ready; export SLURM_CONF=$SLURM_CONF"
