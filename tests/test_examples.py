"""The cluster examples (SLURM, Kubernetes, TPU VM), checked as far as this machine allows:
valid syntax, consistent settings, and train.py flags that its own parser accepts."""

import re
import shlex
import subprocess

import pytest
import yaml

import train
from tests.conftest import ROOT

CLUSTER = ROOT / "examples" / "cluster"


def _train_args(script: str) -> list[str]:
    """The arguments of the `python train.py ...` command in a shell script."""
    joined = re.sub(r"\\\n\s*", " ", script)
    command = re.search(r"python train\.py ([^\n]*)", joined).group(1)
    # Shell variables stand in for values; the tpu-vm command ends its quoted --command.
    return shlex.split(command.replace("$", "X").removesuffix('"'))


@pytest.mark.parametrize("name", ["slurm.sbatch", "tpu-vm.sh"])
def test_shell_examples_are_valid_bash_with_flags_train_py_accepts(name):
    path = CLUSTER / name
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    args = train.parser().parse_args(_train_args(path.read_text()))
    assert args.preset == "fast" and args.batch_size % 8 == 0


def test_slurm_runs_one_process_per_node_and_lets_jax_read_slurm():
    script = (CLUSTER / "slurm.sbatch").read_text()
    assert "#SBATCH --ntasks-per-node=1" in script and "srun" in script
    assert "--coordinator-address" not in script  # JAX detects SLURM itself.


def test_k8s_manifest_is_an_indexed_job_whose_pods_find_their_coordinator():
    service, job = yaml.safe_load_all((CLUSTER / "k8s-indexed-job.yaml").read_text())
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"job-name": job["metadata"]["name"]}
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    assert pod["subdomain"] == service["metadata"]["name"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert int(env["HDR_NUM_PROCESSES"]["value"]) == spec["completions"]
    host, port = env["HDR_COORDINATOR_ADDRESS"]["value"].split(":")
    assert host == f"{job['metadata']['name']}-0.{pod['subdomain']}"
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]
    assert env["HDR_PROCESS_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert container["command"][:2] == ["python", "train.py"]
    args = train.parser().parse_args(container["command"][2:])
    assert args.batch_size % (container["resources"]["limits"]["nvidia.com/gpu"]
                              * spec["completions"]) == 0
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert mounts == {v["name"] for v in pod["volumes"]}
