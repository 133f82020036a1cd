#!/bin/sh
# The lab's stand-in for PMK's node upgrade, for plans/pmk-cluster-upgrade.toml's
# `node_upgrade_command` parameter: called as `pmk-upgrade-node.sh NODE` against the lab's
# Kubernetes API double (`lab kube serve`), it does through the API what a real upgrade
# shows there: the kubelet restarts (the node reports NotReady), comes back at the new
# version (status.nodeInfo.kubeletVersion), and reports Ready again. It also labels the node
# `lab.rok-plan/kubelet-version=VERSION`, so lab workloads can ask for upgraded nodes.
#
# Environment: KUBECONFIG (the lab's kubeconfig), LAB_KUBELET_VERSION (default v1.34.0).
# Running it again on an upgraded node changes nothing visible (the plan's contract).
set -eu
node=${1:?usage: pmk-upgrade-node.sh NODE}
version=${LAB_KUBELET_VERSION:-v1.34.0}
status() {
  kubectl patch node "$node" --subresource=status --type=strategic -p "$1" >/dev/null
}
current=$(kubectl get node "$node" -o jsonpath='{.status.nodeInfo.kubeletVersion}')
if [ "$current" != "$version" ]; then
  status '{"status":{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady","message":"kubelet is restarting for its upgrade"}]}}'
  status "{\"status\":{\"nodeInfo\":{\"kubeletVersion\":\"$version\"}}}"
fi
kubectl label node "$node" --overwrite "lab.rok-plan/kubelet-version=$version" >/dev/null
status '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}'
echo "node $node upgraded: kubelet $version"
