"""The MoBY pieces against hand-computed references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from moby_al_plugin.network import (
    MoBYNetwork,
    ProjectionHead,
    cosine_momentum,
    enqueue,
    info_nce,
    moby_contrastive_loss,
    momentum_update,
)


def _reference_info_nce(q, k, queue, t):
    """Textbook InfoNCE with Python floats, one sample at a time."""
    total = 0.0
    for qi, ki in zip(q.tolist(), k.tolist()):
        pos = sum(a * b for a, b in zip(qi, ki)) / t
        negs = [sum(a * b for a, b in zip(qi, col)) / t for col in queue.T.tolist()]
        denom = math.exp(pos) + sum(math.exp(n) for n in negs)
        total += -(pos - math.log(denom))
    return total / len(q)


def test_info_nce_hand_computed_two_by_two():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    queue = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # columns (0, 1) and (1, 0)
    # sample 1: pos 1/0.5=2, negs 0 and 2 -> -2 + log(e^2 + 1 + e^2)
    # sample 2: pos 0.8/0.5=1.6, negs 2 and 0 -> -1.6 + log(e^1.6 + e^2 + 1)
    first = -2 + math.log(2 * math.e**2 + 1)
    second = -1.6 + math.log(math.e**1.6 + math.e**2 + 1)
    expected = (first + second) / 2
    got = info_nce(q, k, queue, temperature=0.5)
    assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("batch,dim,size,temp", [(1, 3, 1, 0.2), (3, 4, 5, 0.2), (4, 8, 16, 0.07)])
def test_info_nce_matches_reference(batch, dim, size, temp):
    q = F.normalize(torch.randn(batch, dim), dim=1)
    k = F.normalize(torch.randn(batch, dim), dim=1)
    queue = F.normalize(torch.randn(dim, size), dim=0)
    got = info_nce(q, k, queue, temp).item()
    assert got == pytest.approx(_reference_info_nce(q, k, queue, temp), rel=1e-5)


def test_moby_loss_is_symmetric_sum_with_crossed_queues():
    qs, qw, ks, kw = (F.normalize(torch.randn(3, 4), dim=1) for _ in range(4))
    queue_s = F.normalize(torch.randn(4, 6), dim=0)
    queue_w = F.normalize(torch.randn(4, 6), dim=0)
    got = moby_contrastive_loss(qs, qw, ks, kw, queue_s, queue_w, 0.2).item()
    expected = _reference_info_nce(qs, kw, queue_w, 0.2) + _reference_info_nce(qw, ks, queue_s, 0.2)
    assert got == pytest.approx(expected, rel=1e-5)


def test_cosine_momentum_first_middle_last():
    assert cosine_momentum(0, 100) == pytest.approx(0.99)
    assert cosine_momentum(50, 100) == pytest.approx(0.995)
    assert cosine_momentum(100, 100) == pytest.approx(1.0)
    assert cosine_momentum(25, 100) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)


def test_momentum_update_is_ema_without_grad():
    online = torch.nn.Linear(2, 2)
    target = torch.nn.Linear(2, 2)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(0.0)
    momentum_update(online, target, 0.9)
    assert torch.allclose(target.weight, torch.full((2, 2), 0.1))
    assert target.weight.grad is None


def test_enqueue_odd_batches_wrap_around():
    queue = torch.zeros(2, 5)
    pointer = torch.zeros(1, dtype=torch.long)
    enqueue(queue, pointer, torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    assert pointer.item() == 3
    enqueue(queue, pointer, torch.tensor([[4.0, 4.0], [5.0, 5.0], [6.0, 6.0]]))
    # 4 and 5 fill columns 3 and 4, 6 wraps to column 0
    assert queue[0].tolist() == [6.0, 2.0, 3.0, 4.0, 5.0]
    assert pointer.item() == 1
    enqueue(queue, pointer, torch.arange(14.0).view(7, 2))  # larger than the queue
    assert sorted(queue[0].tolist()) == [4.0, 6.0, 8.0, 10.0, 12.0]
    assert pointer.item() == 1


def test_projection_head_layouts():
    assert len(ProjectionHead(8, 4, "bn_relu").layers) == 3
    assert len(ProjectionHead(8, 4, "linear").layers) == 1
    mlp = ProjectionHead(8, 4, "mlp")
    assert isinstance(mlp.layers[-1], torch.nn.Linear) and mlp.layers[0].out_features == 8
    assert ProjectionHead(8, 4, "mlp", hidden_dim=32).layers[0].out_features == 32
    with pytest.raises(ValueError, match="head layout"):
        ProjectionHead(8, 4, "mlp3")


def test_only_the_linear_ending_heads_give_negative_similarities():
    # a head ending in ReLU makes every coordinate, so every similarity, >= 0
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    relu_end = F.normalize(ProjectionHead(8, 4, "bn_relu")(x), dim=1)
    assert (relu_end @ relu_end.T).min() >= 0
    for layout in ("mlp", "linear"):
        out = F.normalize(ProjectionHead(8, 4, layout)(x), dim=1)
        assert (out @ out.T).min() < 0, layout
    net = MoBYNetwork("small_cnn", in_channels=1, n_classes=2, projection_dim=4)
    assert len(net.projector.layers) == 3  # the default layout: the paper's Linear-BN-ReLU


def test_momentum_update_matches_a_parameter_loop():
    torch.manual_seed(0)
    online, target = (
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)),
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)),
    )
    expected = [
        0.7 * t.detach() + 0.3 * o.detach()
        for o, t in zip(online.parameters(), target.parameters())
    ]
    momentum_update(online, target, 0.7)
    for got, want in zip(target.parameters(), expected):
        assert torch.allclose(got, want)


def test_forward_leaves_queues_and_momentum_branch_alone():
    net = MoBYNetwork("small_cnn", in_channels=1, n_classes=3, queue_size=8, projection_dim=16)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    net(torch.rand(4, 1, 8, 8))
    net.eval()
    net.embed(torch.rand(4, 1, 8, 8))
    after = net.state_dict()
    for name, value in before.items():
        if "momentum" in name or "queue" in name:
            assert torch.equal(value, after[name]), name


def test_momentum_branch_has_no_gradients():
    net = MoBYNetwork("small_cnn", in_channels=1, n_classes=3, queue_size=8, projection_dim=16)
    assert all(not p.requires_grad for p in net.momentum_parameters())
    loss, feats, ks, kw = net.contrastive_forward(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8))
    loss.backward()
    assert all(p.grad is None for p in net.momentum_parameters())
    assert net.encoder.parameters().__next__().grad is not None
    assert ks.shape == kw.shape == (4, 16)
    assert torch.allclose(ks.norm(dim=1), torch.ones(4), atol=1e-5)
    net.enqueue_keys(ks, kw)
    assert net.queue_pointer.item() == 4
    assert torch.allclose(net.queue_strong[:, :4].T, ks)
    assert torch.allclose(net.queue_weak[:, :4].T, kw)


@pytest.mark.parametrize("update_from_strong", [False, True])
def test_strong_views_leave_running_stats_unless_asked(update_from_strong):
    torch.manual_seed(0)
    net = MoBYNetwork(
        "small_cnn",
        in_channels=1,
        n_classes=3,
        queue_size=8,
        projection_dim=16,
        strong_view_running_stats=update_from_strong,
    )
    bn = next(m for m in net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    weak = torch.rand(6, 1, 8, 8)
    strong = weak * 0.1 + 0.9  # very different statistics
    reference = MoBYNetwork(
        "small_cnn", in_channels=1, n_classes=3, queue_size=8, projection_dim=16
    )
    reference.load_state_dict(net.state_dict())
    ref_bn = next(m for m in reference.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    net.train()
    reference.train()
    net.contrastive_forward(weak, strong)
    reference.embed(weak)  # what the running mean sees from the weak view alone
    same = torch.allclose(bn.running_mean, ref_bn.running_mean)
    assert same is (not update_from_strong)
    assert bn.momentum == ref_bn.momentum  # restored after the strong pass


def test_frozen_running_stats_restores_momentum_on_error():
    from moby_al_plugin.network import frozen_running_stats

    bn = torch.nn.BatchNorm1d(3)
    with pytest.raises(RuntimeError):
        with frozen_running_stats(bn):
            assert bn.momentum == 0.0
            raise RuntimeError("boom")
    assert bn.momentum == 0.1
