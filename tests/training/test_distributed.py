"""shutdown_distributed: the process group is gone afterwards, and without one it does nothing."""
import socket

import torch.distributed as dist

from training.distributed import shutdown_distributed


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_destroys_the_process_group():
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    assert dist.is_initialized()
    shutdown_distributed()
    assert not dist.is_initialized()


def test_without_a_process_group_does_nothing():
    assert not dist.is_initialized()
    shutdown_distributed()
    assert not dist.is_initialized()
