#!/usr/bin/env bash
# The quick start: brings up a lab of 4 simulated Rok appliances (each a real sshd on
# 127.0.0.1 in its own namespaces, with simulated Rok tools), runs plans/rok-v0.12.toml on
# it end to end (the BOOT-disk gates approved with --yes), and shows `rok-plan status`.
#
#   sudo lab/quickstart.sh            (root: the appliances live in mount/UTS/PID namespaces)
#   KEEP_LAB=1 lab/quickstart.sh      (leave the appliances running; stop them with
#                                      target/release/lab appliances down --dir DIR)
#
# Installs openssh-server/openssh-client from Debian's packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "quickstart: run as root (the lab's appliances need mount, UTS and PID namespaces)" >&2
  exit 1
fi
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

echo "building rok-plan and the lab (release)..."
cargo build --release -q -p rok-plan --bin rok-plan
cargo build --release -q -p rok-plan-lab --bin lab
rok_plan=$PWD/target/release/rok-plan
lab=$PWD/target/release/lab

dir=${ROK_QUICKSTART_DIR:-/tmp/rok-quickstart}
"$lab" appliances down --dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
"$lab" appliances up --nodes 4 --dir "$dir" --detach
if [ -z "${KEEP_LAB:-}" ]; then
  trap '"$lab" appliances down --dir "$dir" >/dev/null 2>&1 || true' EXIT
fi

echo
echo "\$ rok-plan plan plans/rok-v0.12.toml --params $dir/params-rok-v0.12.toml | head"
"$rok_plan" plan plans/rok-v0.12.toml --params "$dir/params-rok-v0.12.toml" | head -n 12
echo "..."
echo
echo "\$ rok-plan execute plans/rok-v0.12.toml --params ... --ssh-config $dir/ssh_config --yes"
"$rok_plan" --state "$dir/state" execute plans/rok-v0.12.toml \
  --params "$dir/params-rok-v0.12.toml" --ssh-config "$dir/ssh_config" --yes
echo
echo "\$ rok-plan status"
"$rok_plan" --state "$dir/state" status
echo
echo "What the appliances say now (rok-cluster-ctl member-list on the master):"
ssh -F "$dir/ssh_config" rok-node-1 rok-cluster-ctl member-list
