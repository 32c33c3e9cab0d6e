# EFL improved baseline, ResNet-50 FPN, on your own LVIS- or COCO-format dataset: the recipe of
# efl_improved_baseline_r50_2x_rfs.py (EFL, repeat factor sampling, LVIS AP with APr/APc/APf) with
# the dataset paths given as overrides. The number of classes, their names and frequency groups come
# from the files (see projects/EFL/efl/data/custom.py: COCO ids 1..90 with gaps are fine).
#
#   .venv/bin/python tools/train_net.py --config-file configs/efl_improved_baseline_r50_custom.py \
#       --num-gpus 8 \
#       dataset.train_json=/data/mine/annotations/train.json dataset.train_images=/data/mine/images \
#       dataset.val_json=/data/mine/annotations/val.json dataset.val_images=/data/mine/images \
#       train.max_iter=20000 train.output_dir=output/mine
#
# train.max_iter is required: the LVIS schedule's milestones (epochs 16 and 22 of 24) are fractions
# of it; 24 epochs of the repeat-factor-expanded set are
# efl.data.iterations_for_epochs(efl.data.expanded_epoch_length(factors), epochs=24, total_batch_size=16).
# Images are <image root>/<file_name> for COCO files and <image root>/<split>/<file> of each
# coco_url for LVIS files. The datasets are registered as custom_train / custom_val.
from omegaconf import MISSING

from .efl_improved_baseline_r50_2x_rfs import dataloader, lr_multiplier, model, optimizer, train

dataset = dict(train_json=MISSING, train_images=MISSING, val_json=MISSING, val_images=MISSING)

# ${efl.lvis_format_dataset:NAME,JSON,IMAGES[,FREQUENCY_JSON]} registers the file (once) and gives
# NAME, so Detectron2 and tools/train_net.py see plain dataset names. The validation set's
# frequency groups are counted on the training file, as LVIS does.
dataloader.train.dataset.names = (
    "${efl.lvis_format_dataset:custom_train,${dataset.train_json},${dataset.train_images}}"
)
dataloader.test.dataset.names = (
    "${efl.lvis_format_dataset:custom_val,${dataset.val_json},${dataset.val_images},${dataset.train_json}}"
)
model.num_classes = "${efl.num_classes:${dataloader.train.dataset.names}}"

train.max_iter = MISSING
train.checkpointer.period = 5000
train.output_dir = "./output/efl_improved_baseline_r50_custom"
