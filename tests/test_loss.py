"""The losses: multibox (labels) and distillation (a teacher's outputs), on small made-up tensors."""

import torch

from slfm.loss import balanced_class_weights, distillation_loss, multibox_loss


def test_distillation_is_zero_at_the_teacher_and_weights_live_anchors():
    torch.manual_seed(0)
    loc_t, conf_t = torch.randn(2, 50, 4), torch.randn(2, 50, 3)
    conf_t[:, :45, 0] += 8  # 45 background anchors, 5 live ones per image
    box, cls = distillation_loss(loc_t, conf_t, loc_t, conf_t)
    assert float(box) == 0 and abs(float(cls)) < 1e-6
    # the same error costs more on a live anchor than on a background one
    off_bg, off_live = loc_t.clone(), loc_t.clone()
    off_bg[:, 0] += 1.0
    off_live[:, 47] += 1.0
    assert (
        distillation_loss(off_live, conf_t, loc_t, conf_t)[0] > 10 * distillation_loss(off_bg, conf_t, loc_t, conf_t)[0]
    )
    # gradients reach the student only
    loc_s, conf_s = loc_t.clone().requires_grad_(), (conf_t + 0.5 * torch.randn_like(conf_t)).requires_grad_()
    conf_t.requires_grad_()
    b, c = distillation_loss(loc_s, conf_s, loc_t, conf_t)
    (b + c).backward()
    assert float(c) > 0 and conf_s.grad.abs().sum() > 0 and conf_t.grad is None


def test_multibox_counts_positives_and_hardest_negatives():
    loc_p, loc_t = torch.zeros(1, 10, 4), torch.zeros(1, 10, 4)
    loc_t[0, 0] = 1.0
    conf_p = torch.zeros(1, 10, 3)
    conf_t = torch.zeros(1, 10, dtype=torch.long)
    conf_t[0, 0] = 1
    loc_l, conf_l = multibox_loss(loc_p, conf_p, loc_t, conf_t, negpos_ratio=3)
    assert torch.isclose(loc_l, torch.tensor(4 * 0.5))  # SmoothL1(1) = 0.5 on 4 offsets, one positive
    assert torch.isclose(conf_l, torch.tensor(4 * torch.log(torch.tensor(3.0))))  # 1 positive + 3 negatives
    w = balanced_class_weights([1, 2, 2, 2], 3)
    assert w[0] == 1.0 and w[1] == 3 * w[2]  # the rarer class weighs more
