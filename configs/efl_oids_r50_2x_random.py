# EFL improved baseline, ResNet-50 FPN, on the Open Images Challenge 2019 train split (500 classes),
# plain random sampling, 180k iterations of 16 images (the reference's efl_oids_r50_2x_random.yaml;
# docs/openimages.md). Reference: mAP 51.5 (mAP0-4: 52.8 / 52.9 / 50.8 / 50.2 / 50.9) on the
# challenge validation set with the official metric.
#   tools/train_net.py --config-file configs/efl_oids_r50_2x_random.py --num-gpus 8
# For another total batch B: dataloader.train.total_batch_size=B optimizer.lr=0.00125*B and the
# iteration counts below times 16/B.
from fvcore.common.param_scheduler import MultiStepParamScheduler

from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler

from efl.modeling import FrozenStatisticsBN

from .common.data.openimages import dataloader
from .common.models.improved_retinanet import model
from .common.optim import SGD as optimizer
from .common.train import train

model.num_classes = 500
# EFL: gamma_b 2, scale factor 8, alpha 0.25
model.cls_loss.gamma_b = 2.0
model.cls_loss.scale_factor = 8.0
model.cls_loss.alpha = 0.25
# The reference's ATSS centre rule for its "+1" boxes: an anchor centre more than 0.51 px inside
# the ground truth (docs/improved_baseline.md §2; YOLOX-IP keeps 0.01)
model.anchor_labeler.center_margin = 0.51
# The reference's trainable parameters: the frozen BN of res3-res5 keeps its statistics fixed but
# trains its affine weight and bias (84 tensors in R50), and the head's tower convs have no bias
model.backbone.bottom_up.stages.norm = L(FrozenStatisticsBN)()
model.head.tower_conv_bias = False

dataloader.train.total_batch_size = 16
optimizer.lr = 0.02  # 0.00125 per image, as the reference

# 180k iterations, lr x0.1 at 120k and 160k, 500 iterations of linear warmup from 0.001 x lr
# (the reference counts them in epochs of its train list: 1.719425, 1.146283, 1.528377, 0.004776)
train.max_iter = 180000
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(
        values=[1.0, 0.1, 0.01], milestones=[120000, 160000], num_updates=180000
    ),
    warmup_length=500 / 180000,
    warmup_method="linear",
    warmup_factor=0.001,
)
train.clip_grad.max_norm = 35.0
# torchvision ImageNet weights converted with detectron2's tools/convert-torchvision-to-d2.py
train.init_checkpoint = "pretrained/R-50-torchvision.pkl"
train.output_dir = "./output/efl_oids_r50_2x_random"
train.checkpointer.period = 10000
train.eval_period = 0  # evaluate once, at the end
# per_class_ap.csv and metrics.json next to the run's other records
dataloader.evaluator.output_dir = "${train.output_dir}"
