"""Multi-process launcher that also runs on CPU (gloo).

Detectron2 0.6's ``detectron2.engine.launch`` asserts CUDA and hard-codes NCCL. With CUDA this
module hands over to it unchanged; without CUDA it spawns ``num_gpus_per_machine`` CPU processes
joined by a gloo process group, so the distributed code path (DDP, the loss statistics
all-reduce, the distributed evaluator) runs and is testable on any machine.
"""
import logging
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import launch as d2_launch
from detectron2.engine.launch import DEFAULT_TIMEOUT
from detectron2.utils import comm

from ..compat import create_local_process_group, find_free_port

__all__ = ["DEFAULT_TIMEOUT", "launch"]


def launch(
    main_func,
    num_gpus_per_machine,
    num_machines=1,
    machine_rank=0,
    dist_url=None,
    args=(),
    timeout=DEFAULT_TIMEOUT,
):
    """Run ``main_func(*args)`` in ``num_machines * num_gpus_per_machine`` processes.

    Same arguments as :func:`detectron2.engine.launch`. ``num_gpus_per_machine`` counts GPUs
    with CUDA and CPU processes without it.
    """
    try:
        if torch.cuda.is_available():
            return d2_launch(main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url,
                             args=args, timeout=timeout)
        world_size = num_machines * num_gpus_per_machine
        if world_size <= 1:
            return main_func(*args)
        if dist_url == "auto":
            if num_machines != 1:
                raise ValueError("dist_url=auto is only supported on one machine; pass tcp://HOST:PORT")
            dist_url = f"tcp://127.0.0.1:{find_free_port()}"
        mp.spawn(
            _cpu_worker,
            nprocs=num_gpus_per_machine,
            args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout),
            daemon=False,
        )
    except mp.ProcessExitedException as e:
        # A worker that exits with a status (sys.exit after logging its error) has said why in its
        # log; the launcher's own traceback would only bury that message. A signal is reported.
        if not e.exit_code or e.exit_code < 0:
            raise
        raise SystemExit(e.exit_code) from None


def _cpu_worker(local_rank, main_func, world_size, num_gpus_per_machine, machine_rank, dist_url,
                args, timeout):
    # The children of mp.spawn re-import this module but not the caller's `import efl`;
    # importing it here applies the compatibility fixes in every worker.
    import efl  # noqa: F401

    # N processes with the default thread count each would oversubscribe the cores (OpenMP threads
    # spin-wait): on 2 cores that made a training step 10x slower. Share the cores instead.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_gpus_per_machine))
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    try:
        dist.init_process_group(backend="gloo", init_method=dist_url, world_size=world_size,
                                rank=global_rank, timeout=timeout)
    except Exception:
        logging.getLogger(__name__).error(f"Process group URL: {dist_url}")
        raise
    # comm.get_local_rank() and comm.get_local_size() read this group, as under the NCCL launcher.
    create_local_process_group(num_gpus_per_machine, machine_rank)
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()
