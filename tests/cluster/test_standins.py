"""The nvidia-smi test double prints nvidia-smi's formats (no cluster needed)."""

from __future__ import annotations

import os
import pathlib
import subprocess

SMI = pathlib.Path(__file__).resolve().parent / "standin" / "nvidia-smi"


def smi(*args, gpus=None):
    env = dict(os.environ)
    if gpus is not None:
        env["NVIDIA_SMI_STANDIN_GPUS"] = str(gpus)
    return subprocess.run([str(SMI), *args], capture_output=True, text=True, env=env, timeout=30,
                          check=False)


def test_default_table_has_one_block_per_gpu_and_fixed_width():
    out = smi().stdout.splitlines()
    assert out[2].startswith("| NVIDIA-SMI 535.129.03") and "CUDA Version: 12.2" in out[2]
    assert sum("Tesla V100-PCIE-16GB" in line for line in out) == 4
    assert {len(line) for line in out[1:] if line.strip()} == {89}
    assert "N/A / 250W" in "\n".join(out)


def test_list_and_count_from_the_environment():
    lines = smi("-L", gpus=2).stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("GPU 1: Tesla V100-PCIE-16GB (UUID: GPU-") and lines[1].endswith(")")
    none = smi("-L", gpus=0)
    assert none.returncode == 6 and none.stdout.strip() == "No devices were found"


def test_query_gpu_csv_variants():
    fields = ("index,name,uuid,temperature.gpu,utilization.gpu,utilization.memory,memory.used,"
              "memory.total,memory.free,power.draw,clocks.sm")
    full = smi("--query-gpu=" + fields, "--format=csv").stdout.splitlines()
    assert full[0] == ("index, name, uuid, temperature.gpu, utilization.gpu [%], utilization.memory [%], "
                       "memory.used [MiB], memory.total [MiB], memory.free [MiB], power.draw [W], clocks.sm [MHz]")
    assert len(full) == 5
    row = full[1].split(", ")
    assert row[0] == "0" and row[1] == "Tesla V100-PCIE-16GB" and row[7] == "16384 MiB" and row[9].endswith(" W")
    assert full[4].split(", ")[9] == "[N/A]"
    bare = smi("--query-gpu=index,memory.used,memory.free,memory.total", "--format=csv,noheader,nounits").stdout
    for line in bare.splitlines():
        i, used, free, total = (int(v) for v in line.split(", "))
        assert used + free == total == 16384
    bad = smi("--query-gpu=index,bogus", "--format=csv")
    assert bad.returncode == 2 and 'Field "bogus" is not a valid field to query.' in bad.stdout


def test_query_compute_apps():
    out = smi("--query-compute-apps=pid,used_memory", "--format=csv", gpus=3).stdout.splitlines()
    assert out[0] == "pid, used_gpu_memory [MiB]" and len(out) == 4
    assert out[1].endswith(" MiB") and int(out[1].split(", ")[0]) > 0
