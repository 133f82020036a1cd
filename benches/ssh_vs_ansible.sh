#!/usr/bin/env bash
# rok-plan beside ansible-playbook and plain multiplexed ssh, on the same work: HOSTS lab
# appliances (real sshd on loopback), CMDS commands on each; once with the hosts in
# parallel and once rolling (one host at a time). Prints the times and the ratios.
#
#   benches/ssh_vs_ansible.sh            (as root: the lab needs namespaces)
#   HOSTS=10 CMDS=20 ROUNDS=3 benches/ssh_vs_ansible.sh
#
# Installs ansible-core from PyPI into target/bench-venv the first time. Every tool uses the
# lab's ssh_config (plain login profile, no pyenv), ControlPersist masters, and no facts.
# Each figure is the median of ROUNDS runs and includes opening the connections.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-10}
CMDS=${CMDS:-20}
ROUNDS=${ROUNDS:-3}
COMMAND=${COMMAND:-uname -n}

cargo build --release -q -p rok-plan --bin rok-plan
cargo build --release -q -p rok-plan-lab --bin lab
root=$PWD
rok_plan=$root/target/release/rok-plan
lab=$root/target/release/lab

venv=$root/target/bench-venv
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  echo "installing ansible-core into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ansible-core
fi

work=$(mktemp -d /tmp/rok-bench.XXXXXX)
cleanup() {
  "$lab" appliances down --dir "$work/lab" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$lab" appliances up --nodes "$HOSTS" --dir "$work/lab" --detach >/dev/null
cfg=$work/lab/ssh_config
hosts=$(seq -f "rok-node-%g" 1 "$HOSTS" | paste -sd' ')

# --- the plans: a group per host, CMDS steps chained inside it ---------------------------
plan() { # $1 = max_parallel line or empty
  printf '[plan]\nname = "bench"\n[params.hosts]\ntype = "list"\n'
  printf '[[group]]\nid = "h"\nfor_each = "params.hosts"\n%s\n' "$1"
  for i in $(seq 1 "$CMDS"); do
    printf '[[step]]\nid = "c%s"\ngroup = "h"\ntype = "ssh"\nhost = "{{ item }}"\nrun = "%s"\n' "$i" "$COMMAND"
    [ "$i" -gt 1 ] && printf 'needs = ["c%s"]\n' $((i - 1))
  done
}
plan "" >"$work/parallel.toml"
plan "max_parallel = 1" >"$work/rolling.toml"
list=$(printf '"%s",' $hosts); list="[${list%,}]"

# --- ansible ----------------------------------------------------------------------------
cat >"$work/ansible.cfg" <<CFG
[defaults]
inventory = $work/inventory
forks = $HOSTS
gathering = explicit
host_key_checking = True
interpreter_python = /usr/bin/python3
[ssh_connection]
pipelining = True
ssh_args = -F $cfg -o ControlMaster=auto -o ControlPersist=60s
control_path_dir = $work/cp
CFG
printf '%s\n' $hosts >"$work/inventory"
playbook() { # $1 = serial line or empty
  printf -- '- hosts: all\n  gather_facts: false\n%s\n  tasks:\n' "$1"
  for i in $(seq 1 "$CMDS"); do
    printf '    - name: c%s\n      ansible.builtin.command: %s\n      changed_when: false\n' "$i" "$COMMAND"
  done
}
playbook "" >"$work/parallel.yml"
playbook "  serial: 1" >"$work/rolling.yml"

# --- plain ssh --------------------------------------------------------------------------
ssh_host() { # $1 = host: open a master, run CMDS commands over it, close it
  local cp=$work/cm-$1
  ssh -F "$cfg" -o ControlMaster=yes -o ControlPath="$cp" -o ControlPersist=60 -fN "$1"
  for _ in $(seq 1 "$CMDS"); do ssh -F "$cfg" -o ControlPath="$cp" "$1" "$COMMAND" >/dev/null; done
  ssh -F "$cfg" -o ControlPath="$cp" -O exit "$1" 2>/dev/null
}
ssh_parallel() { for h in $hosts; do ssh_host "$h" & done; wait; }
ssh_rolling() { for h in $hosts; do ssh_host "$h"; done; }

# --- timing -----------------------------------------------------------------------------
seconds() { # runs "$@", prints its wall time in seconds
  local a b
  a=$(date +%s.%N)
  "$@" >"$work/last.log" 2>&1 || { echo "failed: $*" >&2; tail -n 30 "$work/last.log" >&2; exit 1; }
  b=$(date +%s.%N)
  awk -v a="$a" -v b="$b" 'BEGIN { print b - a }'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # name, command...
  local name=$1; shift
  local i
  for i in $(seq 1 "$ROUNDS"); do
    rm -rf "$work/state"
    seconds "$@"
  done | median
}

rok_parallel() { "$rok_plan" --state "$work/state" -q execute "$work/parallel.toml" --set "hosts=$list" --ssh-config "$cfg" --parallel "$HOSTS"; }
rok_rolling() { "$rok_plan" --state "$work/state" -q execute "$work/rolling.toml" --set "hosts=$list" --ssh-config "$cfg"; }
ansible_parallel() { ANSIBLE_CONFIG=$work/ansible.cfg "$venv/bin/ansible-playbook" "$work/parallel.yml"; }
ansible_rolling() { ANSIBLE_CONFIG=$work/ansible.cfg "$venv/bin/ansible-playbook" "$work/rolling.yml"; }

echo "$HOSTS hosts x $CMDS commands ('$COMMAND'), median of $ROUNDS runs, $(nproc) cores"
printf '%-9s %10s %10s %10s %12s %12s\n' case rok-plan ansible ssh ansible/rok rok/ssh
for case in parallel rolling; do
  r=$(measure "rok $case" "rok_$case")
  a=$(measure "ansible $case" "ansible_$case")
  s=$(measure "ssh $case" "ssh_$case")
  printf '%-9s %9.2fs %9.2fs %9.2fs %11.1fx %11.2fx\n' "$case" "$r" "$a" "$s" \
    "$(awk -v x="$a" -v y="$r" 'BEGIN { print x / y }')" "$(awk -v x="$r" -v y="$s" 'BEGIN { print x / y }')"
done
