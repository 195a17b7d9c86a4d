"""Multibox loss (hard negative mining 7:1, SmoothL1 box loss) plus the heatmap MSE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    box: float = 2.0
    heatmap: float = 1e-3
    negpos_ratio: int = 7
    # hardest anchors mined in an image without any face (a negative sample): 7 x 0 positives would mine none,
    # and the image would teach nothing
    empty_negatives: int = 32


def multibox_loss(
    loc_p,
    conf_p,
    loc_t,
    conf_t,
    negpos_ratio: int = 7,
    class_weights: torch.Tensor | None = None,
    empty_negatives: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SmoothL1 on positive anchors and cross-entropy on positives plus the hardest negatives, both
    divided by the number of positives. ``class_weights`` [C] scales each target class's cross-entropy.
    An image with no positive anchor contributes its ``empty_negatives`` hardest anchors."""
    pos = conf_t > 0
    num_pos = pos.sum(1, keepdim=True)
    loss_l = F.smooth_l1_loss(loc_p[pos], loc_t[pos], reduction="sum")
    with torch.no_grad():
        mining = torch.logsumexp(conf_p, dim=-1) - conf_p.gather(-1, conf_t.unsqueeze(-1)).squeeze(-1)
        mining[pos] = 0
        _, order = mining.sort(1, descending=True)
        _, rank = order.sort(1)
        num_neg = negpos_ratio * num_pos
        num_neg = torch.where(num_pos == 0, torch.full_like(num_neg, empty_negatives), num_neg)
        num_neg = torch.clamp(num_neg, max=pos.shape[1] - 1)
        neg = rank < num_neg
    sel = pos | neg
    loss_c = F.cross_entropy(conf_p[sel], conf_t[sel], weight=class_weights, reduction="sum")
    n = num_pos.sum().clamp(min=1).to(loc_p.dtype)
    return loss_l / n, loss_c / n


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Summed squared error per image, averaged over the batch."""
    return F.mse_loss(pred, target, reduction="sum") / pred.shape[0]


def balanced_class_weights(labels, num_classes: int) -> list[float]:
    """Inverse-frequency weights for the object classes (mean 1 over them); background keeps 1."""
    import numpy as np

    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[1:].astype(np.float64)
    counts = np.maximum(counts, 1.0)
    w = counts.sum() / (len(counts) * counts)
    return [1.0, *w.tolist()]


def total_loss(
    outputs, targets, weights: LossWeights = LossWeights(), class_weights: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    loc_t, conf_t, heat_t = targets
    loc_l, conf_l = multibox_loss(
        outputs[0], outputs[1], loc_t, conf_t, weights.negpos_ratio, class_weights, weights.empty_negatives
    )
    parts = {"loc": loc_l, "conf": conf_l}
    loss = weights.box * loc_l + conf_l
    if len(outputs) > 2:
        parts["heatmap"] = heatmap_loss(outputs[2], heat_t)
        loss = loss + weights.heatmap * parts["heatmap"]
    parts["loss"] = loss
    return parts


def distillation_loss(
    loc_s: torch.Tensor, conf_s: torch.Tensor, loc_t: torch.Tensor, conf_t: torch.Tensor, floor: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """(box, class) loss of a student (e.g. the fake-quantized graph) against its teacher's outputs (the fp32
    model on the same batch): no labels needed, and the optimum is the teacher itself.

    Each anchor is weighted by how likely the teacher thinks it holds a face or a mask (1 - p(background)),
    plus ``floor``: the ~99 % background anchors would otherwise dominate, and only live anchors become
    detections. Class: KL(teacher || student) over the softmax; box: SmoothL1 between the offsets."""
    with torch.no_grad():
        p_t = torch.softmax(conf_t, -1)
        w = (1.0 - p_t[..., 0]) + floor
        w = w / w.sum()
    kl = (p_t * (torch.log(p_t.clamp(min=1e-8)) - torch.log_softmax(conf_s, -1))).sum(-1)
    box = F.smooth_l1_loss(loc_s, loc_t, reduction="none").sum(-1)
    return (w * box).sum(), (w * kl).sum()
