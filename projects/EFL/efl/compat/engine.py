"""What detectron2's trainers support on which device."""
import inspect

__all__ = ["amp_trainer_requires_cuda"]


def amp_trainer_requires_cuda():
    """Whether detectron2's ``AMPTrainer`` refuses to run without CUDA.

    detectron2 0.6 asserts ``torch.cuda.is_available()`` in every ``run_step`` (and uses
    ``torch.cuda.amp``), so ``efl.engine.build_trainer`` falls back to ``SimpleTrainer`` in fp32 on
    CPU. Read from the installed source, so a detectron2 that lifts the restriction is noticed.
    """
    from detectron2.engine import AMPTrainer

    return "torch.cuda.is_available()" in inspect.getsource(AMPTrainer.run_step)
