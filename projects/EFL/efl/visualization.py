"""Pictures people would rather look at than read: detections of several models drawn side by
side on the same images, and each class's g_j and γ_j against its training frequency."""
import numpy as np

from .losses import find_equalized_losses

__all__ = ["draw_detection_grid", "plot_class_statistics"]

_FREQUENCY_COLORS = {"r": "#d62728", "c": "#ff7f0e", "f": "#1f77b4"}
_FREQUENCY_NAMES = {"r": "rare", "c": "common", "f": "frequent"}


# Box colours by LVIS frequency group (BGR-free RGB tuples for OpenCV on RGB images); classes of
# an unknown group are grey.
_GROUP_RGB = {"r": (214, 39, 40), "c": (230, 120, 0), "f": (31, 119, 180)}
_UNKNOWN_RGB = (90, 90, 90)
_FONT_SCALE, _LINE = 0.42, 16


def draw_detection_grid(images, ground_truths, detections, metadata, *, score_threshold=0.3,
                        scale=2.0):
    """
    Args:
        images: list of (H, W, 3) uint8 RGB images.
        ground_truths: list (per image) of detectron2 ``Instances`` with ``gt_boxes``/``gt_classes``.
        detections: ``{model name: list (per image) of Instances with pred_boxes/scores/pred_classes}``.
        metadata: the dataset's ``Metadata`` (``thing_classes``, and ``class_frequency`` when known).
        score_threshold: detections below it are not drawn.

    Returns:
        one (H', W', 3) uint8 RGB image: a row per image, a column for the ground truth and each
        model. Boxes are numbered and coloured by frequency group (rare red, common orange,
        frequent blue); the labels are listed under each panel, so none is cut off at the image
        border or hidden under another, and an empty panel says that nothing passed the threshold.
    """
    frequency = metadata.get("class_frequency", None)

    def label(class_id, score=None):
        name = metadata.thing_classes[class_id]
        if frequency is not None:
            name = f"{name} [{frequency[class_id]}]"
        return name if score is None else f"{name} {score:.2f}"

    def color(class_id):
        return _GROUP_RGB.get(frequency[class_id], _UNKNOWN_RGB) if frequency is not None else _UNKNOWN_RGB

    rows = []
    for index, image in enumerate(images):
        gt = ground_truths[index]
        classes = [int(c) for c in gt.gt_classes]
        panels = [_panel(image, gt.gt_boxes.tensor.numpy(), [label(c) for c in classes],
                         [color(c) for c in classes], "ground truth", "no object", scale)]
        for name, per_image in detections.items():
            det = per_image[index]
            det = det[det.scores >= score_threshold]
            classes = [int(c) for c in det.pred_classes]
            panels.append(_panel(
                image, det.pred_boxes.tensor.numpy(),
                [label(c, float(s)) for c, s in zip(classes, det.scores)], [color(c) for c in classes],
                name, f"no detection with score >= {score_threshold:.2f}", scale))
        rows.append(_pad_and_stack(panels, axis=1))
    return _pad_and_stack(rows, axis=0)


def _panel(image, boxes, labels, colors, title, empty_note, scale):
    """The image enlarged by ``scale`` with numbered boxes, a title bar above and the numbered
    labels listed below."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    picture = cv2.resize(np.ascontiguousarray(image), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    height, width = picture.shape[:2]
    corners = []
    for box, rgb in zip(boxes, colors):
        x1, y1, x2, y2 = (np.asarray(box, dtype=float) * scale).round().astype(int)
        cv2.rectangle(picture, (int(x1), int(y1)), (int(x2), int(y2)), rgb, 2)
        corners.append((min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)))
    # The number tags go on top of all boxes, inside the picture; a tag that would cover one
    # already placed (boxes with the same corner) is stacked below it.
    placed = []
    for number, ((x1, y1), rgb) in enumerate(zip(corners, colors), start=1):
        tag = str(number)
        (tw, th), _ = cv2.getTextSize(tag, font, _FONT_SCALE, 1)
        tx, ty = max(min(x1, width - tw - 4), 0), y1
        while ty + th + 5 < height and any(_overlap((tx, ty, tx + tw + 4, ty + th + 5), r) for r in placed):
            ty += th + 6
        ty = min(ty, max(height - th - 5, 0))
        placed.append((tx, ty, tx + tw + 4, ty + th + 5))
        cv2.rectangle(picture, (tx, ty), (tx + tw + 4, ty + th + 5), rgb, -1)
        cv2.putText(picture, tag, (tx + 2, ty + th + 2), font, _FONT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    lines = [(f"{n} {text}", rgb) for n, (text, rgb) in enumerate(zip(labels, colors), start=1)]
    legend = np.full((_LINE * max(1, len(lines)) + 6, width, 3), 255, dtype=np.uint8)
    for row, (text, rgb) in enumerate(lines):
        y = 6 + row * _LINE
        cv2.rectangle(legend, (4, y), (14, y + 10), rgb, -1)
        cv2.putText(legend, _fit(text, width - 22, font), (20, y + 10), font, _FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    if not lines:
        cv2.putText(legend, _fit(empty_note, width - 8, font), (4, 16), font, _FONT_SCALE, (110, 110, 110), 1,
                    cv2.LINE_AA)
    return _titled(np.concatenate([picture, legend], axis=0), title)


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _fit(text, max_width, font):
    """``text``, shortened with "..." until it is at most ``max_width`` pixels wide."""
    import cv2

    if cv2.getTextSize(text, font, _FONT_SCALE, 1)[0][0] <= max_width:
        return text
    while text and cv2.getTextSize(text + "...", font, _FONT_SCALE, 1)[0][0] > max_width:
        text = text[:-1]
    return text + "..."


def _titled(image, title):
    import cv2

    bar = np.full((28, image.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def _pad_and_stack(images, axis):
    other = 1 - axis
    size = max(im.shape[other] for im in images)
    padded = []
    for im in images:
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[other] = (0, size - im.shape[other])
        padded.append(np.pad(im, pad, constant_values=255))
        # a white gutter between panels
        gutter_shape = list(padded[-1].shape)
        gutter_shape[axis] = 4
        padded.append(np.full(gutter_shape, 255, dtype=np.uint8))
    return np.concatenate(padded[:-1], axis=axis)


def plot_class_statistics(path, metadata, models, *, title=None):
    """
    Plot, for each class, the accumulated positive / negative gradient ratio (before EFL clamps it
    to g_j = min(1, ratio)) and the focusing factor γ_j, against the number of training images that
    contain the class.

    Args:
        path: where to write the PNG.
        metadata: the training set's ``Metadata`` with ``class_image_count`` (and ``class_frequency``
            for colours by LVIS frequency group).
        models: ``{name: model}``, each holding one EFL/EQFL loss module.
    """
    image_count = {c["id"]: c["image_count"] for c in metadata.class_image_count}
    counts = np.array([image_count[k] for k in sorted(image_count)], dtype=float)
    frequencies = metadata.get("class_frequency", None)
    statistics = {}
    for name, model in models.items():
        losses = find_equalized_losses(model)
        if len(losses) != 1:
            raise ValueError(f"model '{name}' holds {len(losses)} EFL/EQFL losses "
                             f"({[n for n, _ in losses]}); the plot needs exactly one")
        loss = losses[0][1]
        statistics[name] = {"ratio": loss.gradient_ratio().cpu().numpy(),
                            "gamma": loss.focusing_factors().cpu().numpy()}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = ["o", "^", "s", "D"]
    colors = [_FREQUENCY_COLORS.get(f, "gray") for f in frequencies] if frequencies else "gray"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for (name, stats), marker in zip(statistics.items(), markers):
        panels = ((axes[0], np.maximum(stats["ratio"], 1e-4), "accumulated positive / negative gradient"),
                  (axes[1], stats["gamma"], "γ_j (focusing factor)"))
        for ax, values, ylabel in panels:
            ax.scatter(counts, values, c=colors, marker=marker, s=28, alpha=0.8,
                       edgecolors="black" if marker != "o" else "none", linewidths=0.5, label=name)
            ax.set_xscale("log")
            ax.set_xlabel("training images containing the class")
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].axhline(1.0, color="black", linestyle="--", linewidth=1)
    axes[0].set_title("dashed: ratio 1. g_j = min(1, ratio); only classes below it get γ_j > γ_b",
                      fontsize=9)
    handles = [plt.Line2D([], [], marker=m, linestyle="", color="gray", label=n)
               for n, m in zip(statistics, markers)]
    if frequencies:
        handles += [plt.Line2D([], [], marker="o", linestyle="", color=c, label=_FREQUENCY_NAMES[f])
                    for f, c in _FREQUENCY_COLORS.items() if f in set(frequencies)]
    axes[1].legend(handles=handles, loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
