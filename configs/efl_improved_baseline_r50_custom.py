# EFL improved baseline, ResNet-50 FPN, on your own LVIS- or COCO-format dataset: the recipe of
# efl_improved_baseline_r50_2x_rfs.py (EFL, repeat factor sampling, 24 epochs, LVIS AP with
# APr/APc/APf) with the dataset paths given as overrides. The number of classes, their names and
# frequency groups come from the files (docs/own_data.md; COCO ids 1..90 with gaps are fine).
#
#   .venv/bin/python tools/train_net.py --config-file configs/efl_improved_baseline_r50_custom.py \
#       --num-gpus 8 \
#       dataset.train_json=/data/mine/annotations/train.json dataset.train_images=/data/mine/images \
#       dataset.val_json=/data/mine/annotations/val.json dataset.val_images=/data/mine/images \
#       train.output_dir=output/mine
#
# Images are <image root>/<file_name> for COCO files and <image root>/<split>/<file> of each
# coco_url for LVIS files. The datasets are registered as custom_train / custom_val.
# train.max_iter is 24 epochs of the repeat-factor-expanded training set, counted from the file
# (the milestones, epochs 16 and 22, are fractions of it); a checkpoint is written every epoch.
from .efl_improved_baseline_r50_2x_rfs import dataloader, lr_multiplier, model, optimizer, train

dataset = dict(train_json="", train_images="", val_json="", val_images="")

# ${efl.lvis_format_dataset:NAME,JSON,IMAGES[,FREQUENCY_JSON]} registers the file (once) and gives
# NAME, so Detectron2 and tools/train_net.py see plain dataset names; the resolvers live in
# efl/data/custom.py. The validation set's frequency groups are counted on the training file, as
# LVIS does.
dataloader.train.dataset.names = (
    "${efl.lvis_format_dataset:custom_train,${dataset.train_json},${dataset.train_images}}"
)
dataloader.test.dataset.names = (
    "${efl.lvis_format_dataset:custom_val,${dataset.val_json},${dataset.val_images},${dataset.train_json}}"
)
model.num_classes = "${efl.num_classes:${dataloader.train.dataset.names}}"

_rfs = ("${dataloader.train.total_batch_size},${dataloader.train.sampler.repeat_factors.repeat_thresh},"
        "${dataloader.train.sampler.repeat_factors.sqrt},${dataloader.train.sampler.repeat_factors.rounding}")
train.max_iter = "${efl.rfs_iterations:${dataloader.train.dataset.names},24," + _rfs + "}"
train.checkpointer.period = "${efl.rfs_iterations:${dataloader.train.dataset.names},1," + _rfs + "}"
train.output_dir = "./output/efl_improved_baseline_r50_custom"
