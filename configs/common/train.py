# The `train` schema: every option of a LazyConfig's `train` that tools/train_net.py and its hooks
# read (efl.engine.defaults), following detectron2's model_zoo common/train.py with what the EFL
# recipes add. A config not composed from this file gets these values for the keys it lacks
# (efl.engine.defaults.load_config); the comment above a key is its line in `train_net.py --help`.
train = dict(
    # where checkpoints, log.txt, metrics.json, config.yaml and final_results.json go
    output_dir="./output",
    # a checkpoint to start from (e.g. converted ImageNet weights); "" trains from scratch
    init_checkpoint="",
    # True: weights of init_checkpoint whose shape differs from the model's (e.g. a classifier for
    # another class count) are skipped and listed; False: such a weight is an error
    init_checkpoint_partial=False,
    # "error": an evaluation set whose annotation file has boxes of zero area or entirely outside
    # their image is refused; "report": evaluated anyway, against the file as written
    eval_invalid_boxes="error",
    # iterations of training
    max_iter=90000,
    # mixed precision: AMPTrainer on CUDA (ignored with a warning on CPU). The EFL statistics are
    # computed in fp32 and never see the loss scale.
    amp=dict(enabled=False),
    ddp=dict(  # options for DistributedDataParallel
        # the EFL buffers stay identical on every process through the loss's own all-reduce
        broadcast_buffers=False,
        find_unused_parameters=False,
        fp16_compression=False,
    ),
    # gradient clipping by the L2 norm of all gradients together (EOD clips LVIS runs at 35)
    clip_grad=dict(enabled=True, max_norm=35.0, norm_type=2.0),
    checkpointer=dict(period=5000, max_to_keep=100),  # options for PeriodicCheckpointer
    # evaluate every eval_period iterations (0: only at the end of training)
    eval_period=0,
    # console / metrics.json / TensorBoard period, also for the EFL per-group statistics
    log_period=20,
    # "cuda" falls back to "cpu" (with a log line) where CUDA is not available
    device="cuda",
    # True: record, per class, the terms of the identity between the equalized loss's statistics
    # and the classification bias's SGD trajectory into bias_ledger.json (docs/method.md §8)
    bias_ledger=False,
    # -1: a different random seed per run; >= 0: seed + rank in every process
    seed=-1,
    # True: cuDNN benchmark mode for training (faster convolutions for fixed input sizes, not
    # bit-reproducible)
    cudnn_benchmark=False,
    # YOLOX-IP: evaluate and checkpoint an exponential moving average of the weights, decay
    # d(t) = decay * (1 - exp(-t / tau)) (docs/yolox_training.md)
    ema=dict(enabled=False, decay=0.9998, tau=2000.0),
    # YOLOX-IP: the last no_aug_epochs epochs train without Mosaic, affine and MixUp (0: never)
    no_aug_epochs=0,
    # iterations per epoch, for no_aug_epochs (configs/common/yolox_optim.py's yolox_schedule)
    epoch_iters=0,
)
