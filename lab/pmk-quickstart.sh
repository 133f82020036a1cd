#!/usr/bin/env bash
# The PMK quick start: brings up a simulated 5-node Kubernetes cluster (the lab's API
# double, `lab kube serve`) with the workloads of seed 004 (lab/pmk-workloads.yaml),
# cordons node-3 by hand as an operator might have, rehearses plans/pmk-cluster-upgrade.toml
# with `plan --server-dry-run` (the drains' pre-flights refuse the unmanaged pod and the
# emptyDir pod, naming them), then runs the plan with both allowed, one node at a time,
# with progress on screen, and shows `rok-plan status` and the nodes.
#
#   lab/pmk-quickstart.sh
#   KEEP_LAB=1 lab/pmk-quickstart.sh   (leave the cluster running; KUBECONFIG is printed)
#
# Needs kubectl (the lab's node upgrade, lab/pmk-upgrade-node.sh, and the workloads use it):
# installed from Debian's packages when missing and run as root; otherwise no root needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v kubectl >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: kubectl"
    apt-get update
    apt-get install -y --no-install-recommends kubectl
  else
    echo "pmk-quickstart: needs kubectl on PATH (as root on Debian it installs it itself)" >&2
    exit 1
  fi
fi

echo "building rok-plan and the lab (release)..."
cargo build --release -q -p rok-plan --bin rok-plan
cargo build --release -q -p rok-plan-lab --bin lab
target=${CARGO_TARGET_DIR:-$PWD/target}
rok_plan=$target/release/rok-plan
lab=$target/release/lab

dir=${ROK_PMK_QUICKSTART_DIR:-/tmp/rok-pmk-quickstart}
rm -rf "$dir"
mkdir -p "$dir"
export KUBECONFIG=$dir/kubeconfig
"$lab" kube serve --nodes 5 --kubeconfig "$KUBECONFIG" --pod-start-ms 300 --pod-stop-ms 100 \
  >"$dir/lab.log" 2>&1 &
lab_pid=$!
if [ -z "${KEEP_LAB:-}" ]; then
  trap 'kill -INT "$lab_pid" 2>/dev/null || true' EXIT
fi
for _ in $(seq 100); do
  kubectl get nodes >/dev/null 2>&1 && break
  kill -0 "$lab_pid" 2>/dev/null || { cat "$dir/lab.log" >&2; exit 1; }
  sleep 0.1
done

echo
echo "\$ kubectl apply -f lab/pmk-workloads.yaml"
kubectl apply -f lab/pmk-workloads.yaml
# Every pod Running except debug-shell, which waits for an upgraded node.
for _ in $(seq 300); do
  [ "$(kubectl get pods --no-headers | grep -c ' Running ')" -ge 19 ] && break
  sleep 0.1
done
echo
echo "\$ kubectl cordon node-3      # cordoned by hand before the run: it stays cordoned"
kubectl cordon node-3
echo
kubectl get nodes -o wide

cat >"$dir/params.toml" <<PARAMS
kube_context = "lab"
nodes = ["node-1", "node-2", "node-3", "node-4", "node-5"]
node_upgrade_command = "$PWD/lab/pmk-upgrade-node.sh"
drain_grace_period = "1s"
app_namespace = "default"
rcs_tolerating_downtime = ["batch-worker"]
rcs_without_downtime = ["frontend"]
bare_pods = ["debug-shell"]
PARAMS
plan=plans/pmk-cluster-upgrade.toml

echo
echo "\$ rok-plan plan $plan --params $dir/params.toml --server-dry-run"
"$rok_plan" plan "$plan" --params "$dir/params.toml" --server-dry-run \
  | sed -n '/Server dry run/,$p' || true
echo
echo "The pre-flights refuse to delete the unmanaged pod and to erase the emptyDir data"
echo "(seed 004's warnings). Allowing both:"
echo
echo "\$ rok-plan execute $plan --params $dir/params.toml --set allow_unmanaged=true --set allow_emptydir_loss=true"
"$rok_plan" --state "$dir/state" execute "$plan" --params "$dir/params.toml" \
  --set allow_unmanaged=true --set allow_emptydir_loss=true --eviction-retry 1s
echo
echo "\$ rok-plan status"
"$rok_plan" --state "$dir/state" status
echo
echo "\$ kubectl get nodes -o wide"
kubectl get nodes -o wide
if [ -n "${KEEP_LAB:-}" ]; then
  echo
  echo "The lab cluster keeps running (pid $lab_pid): export KUBECONFIG=$KUBECONFIG"
fi
