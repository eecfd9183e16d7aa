"""The command line that runs a pretraining job in several processes.

On GPUs: ``accelerate launch`` with one of recipes/accelerate/*.yaml (DDP, FSDP, DeepSpeed ZeRO-2/3).
On CPU: ``torchrun`` with gloo, because ``accelerate launch --cpu`` starts a single process
(accelerate's multi-CPU path goes through mpirun); the Trainer sees the same torch.distributed either way.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

ENTRY_POINT = "tasks.train.pretrain"


def free_port() -> int:
    """Return a TCP port free on localhost now, for the rendezvous of one launch."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(job_path: str | Path, num_processes: int, accelerate_config: str = "", cuda: bool = True, mlflow: bool = False) -> list[str]:
    """Return the argv that runs ``python -m tasks.train.pretrain --config job_path`` in ``num_processes`` processes."""
    tail = ["-m", ENTRY_POINT, "--config", str(job_path), *(["--mlflow"] if mlflow else [])]
    port = str(free_port())
    if not cuda:
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(num_processes), "--master_addr", "127.0.0.1", "--master_port", port, *tail]
    config = ["--config_file", accelerate_config] if accelerate_config else ["--multi_gpu"]
    return [sys.executable, "-m", "accelerate.commands.launch", *config, "--num_processes", str(num_processes), "--main_process_port", port, *tail]
