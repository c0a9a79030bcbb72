"""The one-node SLURM cluster of .ci/slurm.sh (`make cluster`) is a real one: sbatch jobs run and write their
output, a walltime ends a job (SIGTERM, then SIGKILL KillWait seconds later), and every address is loopback."""

import ipaddress
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import SlurmCluster

pytestmark = pytest.mark.slurm

FINISHED = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "DEADLINE"}


def slurm(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout


def sbatch(cluster: SlurmCluster, folder: Path, script: str, *options: str) -> int:
    output = slurm("sbatch", "--parsable", f"--partition={cluster.partition}", "--ntasks=1", f"--chdir={folder}",
                   f"--output={folder / 'job-%j.out'}", *options, f"--wrap={script}")  # fmt: skip
    return int(output.strip().split(";")[0])


def job_info(job_id: int) -> dict[str, str]:
    """`scontrol show job` as a dict (JobState, ExitCode, TimeLimit, ...): finished jobs stay there for MinJobAge."""
    return dict(re.findall(r"(\w+)=(\S*)", slurm("scontrol", "--oneliner", "show", "job", str(job_id))))


def wait_finished(job_id: int, timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = job_info(job_id)
        if info["JobState"] in FINISHED:
            return info
        time.sleep(0.5)
    subprocess.run(["scancel", str(job_id)], check=False)
    raise AssertionError(f"job {job_id} not finished after {timeout_s} s: {info}")


def test_sbatch_job_runs_and_writes_its_output(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    script = 'echo "job $SLURM_JOB_ID on $(hostname -s) in $SLURM_JOB_PARTITION"; echo "cwd $PWD"'
    job_id = sbatch(slurm_cluster, tmp_path, script, "--time=1", "--job-name=lattice-test")
    info = wait_finished(job_id, timeout_s=60)
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), info
    assert info["JobName"] == "lattice-test"
    output = (tmp_path / f"job-{job_id}.out").read_text()
    assert output.splitlines() == [
        f"job {job_id} on {slurm_cluster.node} in {slurm_cluster.partition}",
        f"cwd {tmp_path}",
    ]


def test_walltime_ends_the_job_with_sigterm_then_sigkill(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    # A 1-minute job that would sleep for 10 minutes and survives SIGTERM (it logs it, then keeps a heartbeat): SLURM
    # ends it at its time limit (it checks limits about every 30 s) with SIGTERM, then SIGKILL KillWait s later.
    script = (
        'trap \'echo "TERM $(date +%s.%N)"\' TERM; echo "START $(date +%s.%N)"; '
        'for i in $(seq 600); do sleep 1 & wait $!; echo "ALIVE $(date +%s.%N)"; done; echo "END"'
    )
    job_id = sbatch(slurm_cluster, tmp_path, script, "--time=1", "--job-name=lattice-walltime")
    try:
        info = wait_finished(job_id, timeout_s=150)
    finally:
        subprocess.run(["scancel", str(job_id)], check=False)
    kill_wait = re.search(r"^KillWait\s*=\s*(\d+)", slurm("scontrol", "show", "config"), re.MULTILINE)
    assert kill_wait, "no KillWait in scontrol show config"
    output = (tmp_path / f"job-{job_id}.out").read_text()
    assert info["JobState"] == "TIMEOUT", (info, output)
    assert "DUE TO TIME LIMIT" in output
    assert "END" not in output.splitlines()
    times = {kind: float(t) for kind, t in re.findall(r"^(START|TERM) (\S+)$", output, re.MULTILINE)}
    last_alive = max(float(t) for t in re.findall(r"^ALIVE (\S+)$", output, re.MULTILINE))
    term_latency = times["TERM"] - times["START"] - 60  # after the time limit
    kill_after_term = last_alive - times["TERM"]  # the job lived on until SIGKILL
    print(f"SIGTERM {term_latency:.1f} s after the 1-minute limit, SIGKILL {kill_after_term:.1f} s after SIGTERM")
    assert -1 < term_latency < 45
    assert int(kill_wait[1]) - 2 < kill_after_term < int(kill_wait[1]) + 5


def test_controller_and_node_are_on_loopback(slurm_cluster: SlurmCluster) -> None:
    config = slurm("scontrol", "show", "config")
    controller = re.search(r"^SlurmctldHost\[0\]\s*=\s*\S+\((\S+)\)", config, re.MULTILINE)
    assert controller, f"SlurmctldHost has no address: {config}"
    node = dict(re.findall(r"(\w+)=(\S*)", slurm("scontrol", "--oneliner", "show", "node", slurm_cluster.node)))
    for address in (controller[1], node["NodeAddr"]):
        assert ipaddress.ip_address(address).is_loopback, address
