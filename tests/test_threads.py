"""Worker threads and cores (docs/api.md, `engine_info`): on Linux, a pool with one worker per CPU
the process may use (and more than one) pins worker i to the i-th of those CPUs; any other pool,
or `AKIDA_PIN_THREADS=0`, leaves the workers where the process may run. Each case runs in a fresh
process (the pool is built when akida is imported), restricted to a known set of CPUs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "sched_setaffinity"), reason="Linux thread affinity"
)

# Prints the engine's report, the CPUs each akida worker may run on and the process's own; with
# "fork", the same from a forked child (which builds a pool of its own).
REPORT = textwrap.dedent(
    """
    import glob, json, os, sys
    os.sched_setaffinity(0, json.loads(sys.argv[2]))  # before the pool exists
    import numpy as np
    import akida

    def report():
        model = akida.Model([akida.InputData(4, 4, 1, input_bits=1), akida.FullyConnected(4, activations_enabled=False)])
        model.forward(np.ones((64, 4, 4, 1), np.uint8))  # the workers have started
        workers = {}
        for task in glob.glob("/proc/self/task/*"):
            with open(task + "/comm") as f:
                name = f.read().strip()
            if name.startswith("akida-worker-"):
                workers[name] = sorted(os.sched_getaffinity(int(os.path.basename(task))))
        info = akida.engine_info()
        return {"info": info, "workers": workers, "allowed": sorted(os.sched_getaffinity(0))}

    if sys.argv[1] == "fork":
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, json.dumps(report()).encode())
            os._exit(0)
        os.close(write)
        data = b""
        while chunk := os.read(read, 1 << 16):
            data += chunk
        os.waitpid(pid, 0)
        print(data.decode())
    else:
        print(json.dumps(report()))
    """
)


def run_report(cpus, env_changes, mode="plain"):
    env = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "AKIDA_PIN_THREADS")}
    env.update(env_changes)
    out = subprocess.run(
        [sys.executable, "-c", REPORT, mode, json.dumps(sorted(cpus))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def usable_cpus():
    return sorted(os.sched_getaffinity(0))


def two_cpus():
    cpus = usable_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    return cpus[-2:]


@pytest.mark.parametrize("mode", ["plain", "fork"])
def test_one_worker_per_cpu_pins_each_worker_to_its_own_cpu(mode):
    cpus = two_cpus()
    got = run_report(set(cpus), {}, mode)
    assert got["allowed"] == cpus
    assert got["info"]["worker_threads"] == 2
    assert got["info"]["pinned_workers"] is True
    assert got["workers"] == {"akida-worker-0": [cpus[0]], "akida-worker-1": [cpus[1]]}


@pytest.mark.parametrize(
    "env",
    [{"AKIDA_PIN_THREADS": "0"}, {"RAYON_NUM_THREADS": "3"}, {"RAYON_NUM_THREADS": "1"}],
    ids=["turned-off", "more-workers-than-cpus", "one-worker"],
)
@pytest.mark.parametrize("mode", ["plain", "fork"])
def test_other_pools_leave_workers_on_every_allowed_cpu(env, mode):
    cpus = two_cpus()
    got = run_report(set(cpus), env, mode)
    threads = int(env.get("RAYON_NUM_THREADS", 2))
    assert got["info"]["worker_threads"] == threads
    assert got["info"]["pinned_workers"] is False
    assert got["workers"] == {f"akida-worker-{i}": cpus for i in range(threads)}


def test_one_cpu_is_not_pinned():
    cpu = usable_cpus()[0]
    got = run_report({cpu}, {})
    assert got["info"]["worker_threads"] == 1
    assert got["info"]["pinned_workers"] is False
    assert got["workers"] == {"akida-worker-0": [cpu]}
