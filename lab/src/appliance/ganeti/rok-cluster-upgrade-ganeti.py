#!/usr/bin/env python3
"""rok-cluster-upgrade-ganeti, simulated by rok-plan-lab (seed 003, "RokE on a Ganeti
cluster", step 2).

    env ROKE_PASSWORD=... RAPI_PASSWORD=... python scripts/rok-cluster-upgrade-ganeti \\
        --rapi-host GANETI_CLUSTER_NAME --rapi-user GANETI_RAPI_USER --instance ROKE_MASTER

Evacuates the physical host of the RokE master, re-installs the RokE master with the new
appliance image, then asks before migrating the Ganeti instances back to that host.
The lab's state changes through `lab appliances ganeti-script` (.rok-lab.json next to
this file says where the lab is); the passwords are compared here, never passed on.
"""

import argparse
import hmac
import json
import os
import subprocess
import sys

PROG = "rok-cluster-upgrade-ganeti"
HERE = os.path.dirname(os.path.abspath(__file__))


def fail(message):
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def say(message):
    print(f"{PROG}: {message}", flush=True)


def lab_step(ctx, *step):
    """Runs one step in the lab; prints what it did; fails the script if it refused."""
    argv = [ctx["lab_bin"], "appliances", "ganeti-script", "--dir", ctx["lab_dir"], *step]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = result.stderr.strip().removeprefix("error: ")
        fail(message or f"{' '.join(step)} failed ({result.returncode})")
    for line in result.stdout.splitlines():
        say(line)


def same(given, expected):
    return hmac.compare_digest(given.encode(), expected.encode())


def main():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--rapi-host", required=True, help="the Ganeti cluster name")
    parser.add_argument("--rapi-user", required=True, help="the Ganeti RAPI user")
    parser.add_argument("--instance", required=True, help="the RokE master instance")
    args = parser.parse_args()

    with open(os.path.join(HERE, ".rok-lab.json"), encoding="utf-8") as f:
        ctx = json.load(f)
    with open(ctx["credentials"], encoding="utf-8") as f:
        creds = json.load(f)
    roke_password = os.environ.get("ROKE_PASSWORD", "")
    rapi_password = os.environ.get("RAPI_PASSWORD", "")
    if not roke_password or not rapi_password:
        fail("set ROKE_PASSWORD and RAPI_PASSWORD in the environment")
    if args.rapi_host != creds["cluster_name"]:
        fail(f"cannot reach the Ganeti RAPI at {args.rapi_host}: unknown host")
    if args.rapi_user != creds["rapi_user"] or not same(rapi_password, creds["rapi_password"]):
        fail(f"Ganeti RAPI at {args.rapi_host}: 401 Unauthorized (user {args.rapi_user})")
    if not same(roke_password, creds["roke_password"]):
        fail(f"cannot log in to the RokE master {args.instance} as root: wrong password")

    say(f"connected to the Ganeti RAPI at {args.rapi_host} as {args.rapi_user}")
    lab_step(ctx, "start", "--instance", args.instance)
    say("evacuating the physical host of the RokE master")
    lab_step(ctx, "evacuate")
    say(f"re-installing the RokE master {args.instance}")
    lab_step(ctx, "reinstall-master", "--instance", args.instance)
    say("upgrade the RokE master and its physical host before you continue")
    sys.stdout.write("Migrate the Ganeti instances back to the physical host now? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    if answer.strip().lower() not in ("y", "yes"):
        fail("not confirmed: the instances stay where they are")
    lab_step(ctx, "migrate-back")
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
