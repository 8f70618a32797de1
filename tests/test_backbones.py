"""Tests for moby_al_plugin.network.backbones (CPU only, small inputs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from moby_al_plugin.network import backbones
from moby_al_plugin.network.backbones import (
    available_backbones,
    build_backbone,
    check_input_size,
    register_backbone,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A copy of the registry that is thrown away after the test."""
    registry = dict(backbones._REGISTRY)
    monkeypatch.setattr(backbones, "_REGISTRY", registry)
    return registry


def _first_conv(module: nn.Module) -> nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def _check_forward_backward(name: str, channels: int, size: int, batch: int) -> None:
    encoder, feature_dim = build_backbone(name, in_channels=channels, image_size=size)
    encoder.train()
    x = torch.randn(batch, channels, size, size)
    out = encoder(x)
    assert out.shape == (batch, feature_dim)
    assert torch.isfinite(out).all()
    out.sum().backward()
    grad = _first_conv(encoder).weight.grad
    assert grad is not None and torch.isfinite(grad).all()


def test_available_backbones_lists_registered_names() -> None:
    names = available_backbones()
    assert {"resnet18", "small_cnn", "lenet5"} <= set(names)
    assert names == sorted(names)
    assert "vgg11" not in names  # torchvision names are accepted but not listed


@pytest.mark.parametrize(
    ("name", "expected_dim"), [("resnet18", 512), ("small_cnn", 128), ("lenet5", 84)]
)
def test_registered_feature_dims(name: str, expected_dim: int) -> None:
    assert build_backbone(name)[1] == expected_dim


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 28])
@pytest.mark.parametrize("name", ["small_cnn", "lenet5"])
def test_small_backbones_shapes_and_gradients(name: str, size: int, channels: int) -> None:
    _check_forward_backward(name, channels, size, batch=3)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 32])
def test_resnet18_shapes_and_gradients(size: int, channels: int) -> None:
    _check_forward_backward("resnet18", channels, size, batch=2)


def test_resnet18_cifar_stem_keeps_resolution() -> None:
    net, _ = build_backbone("resnet18", in_channels=3)
    assert net.conv1.kernel_size == (3, 3)
    assert net.conv1.stride == (1, 1)
    assert net.conv1.padding == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    assert isinstance(net.fc, nn.Identity)
    net.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32)
        stem = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    assert stem.shape == (2, 64, 32, 32)


def test_small_cnn_widths_keyword() -> None:
    net = backbones.SmallCNN(in_channels=2, widths=(4, 8))
    assert net.feature_dim == 8
    assert net(torch.randn(2, 2, 8, 8)).shape == (2, 8)
    with pytest.raises(ValueError):
        backbones.SmallCNN(widths=())


def test_torchvision_resnet34_by_name() -> None:
    encoder, feature_dim = build_backbone("resnet34", in_channels=3, image_size=32)
    assert feature_dim == 512
    assert isinstance(encoder.fc, nn.Identity)
    assert _first_conv(encoder).kernel_size == (7, 7)  # ImageNet stem kept


def test_torchvision_mobilenet_one_channel_without_image_size() -> None:
    encoder, feature_dim = build_backbone("mobilenet_v3_small", in_channels=1)
    assert feature_dim == 1024
    conv = _first_conv(encoder)
    assert conv.in_channels == 1 and conv.stride == (2, 2) and conv.kernel_size == (3, 3)
    encoder.eval()
    with torch.no_grad():
        assert encoder(torch.randn(2, 1, 32, 32)).shape == (2, 1024)


def test_torchvision_vgg11_one_channel_and_too_small() -> None:
    encoder, feature_dim = build_backbone("vgg11", in_channels=1, image_size=32)
    assert feature_dim == 4096
    assert _first_conv(encoder).in_channels == 1
    assert isinstance(encoder.classifier[-1], nn.Identity)  # final Linear removed
    assert isinstance(encoder.classifier[-2], nn.Identity)  # and its dropout
    encoder.train()
    out = encoder(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 4096)
    # The same encoder rejects 8x8 images (five 2x2 max-pools).
    with pytest.raises(ValueError, match=r"8x8.*'vgg11'"):
        check_input_size(encoder, 1, 8, "vgg11")
    assert encoder.training  # mode restored even after a failure


def test_build_rejects_too_small_images() -> None:
    with pytest.raises(ValueError, match=r"images of 8x8 are too small for backbone 'vgg11'"):
        build_backbone("vgg11", in_channels=1, image_size=(8, 8))


def test_check_input_size_detects_collapsed_feature_map() -> None:
    class Crop(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[..., 4:, 4:]

    encoder = nn.Sequential(Crop(), nn.Flatten())
    with pytest.raises(ValueError, match=r"3x3 are too small for backbone 'crop'"):
        check_input_size(encoder, 1, 3, "crop")
    assert check_input_size(encoder, 1, 5, "crop") == 1


def test_check_input_size_restores_modes_and_rng() -> None:
    encoder, _ = build_backbone("small_cnn", in_channels=1)
    encoder.train()
    encoder.features[1].eval()  # a mixed state must come back as it was
    state = torch.get_rng_state()
    assert check_input_size(encoder, 1, (8, 12), "small_cnn") == 128
    assert torch.equal(state, torch.get_rng_state())
    assert encoder.training and not encoder.features[1].training
    assert encoder.features[0].training


def test_check_input_size_rejects_unpooled_output() -> None:
    encoder = nn.Conv2d(1, 4, 3, padding=1)
    with pytest.raises(ValueError, match="feature_dim"):
        check_input_size(encoder, 1, 8, "conv")


def test_unknown_name_lists_registered_backbones() -> None:
    with pytest.raises(ValueError, match="small_cnn") as info:
        build_backbone("no_such_net")
    assert "torchvision" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"in_channels": 0}, ValueError),
        ({"in_channels": 2.0}, TypeError),
        ({"in_channels": True}, TypeError),
        ({"image_size": 0}, ValueError),
        ({"image_size": (8, 8, 8)}, TypeError),
        ({"image_size": 8.0}, TypeError),
    ],
)
def test_invalid_arguments(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        build_backbone("small_cnn", **kwargs)


def test_register_duplicate_name_raises(isolated_registry: dict) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("resnet18")(lambda in_channels: (nn.Identity(), 1))


def test_register_custom_backbone(isolated_registry: dict) -> None:
    @register_backbone("tiny_custom")
    def build_tiny(in_channels: int) -> tuple[nn.Module, int]:
        net = nn.Sequential(
            nn.Conv2d(in_channels, 5, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        return net, 5

    assert "tiny_custom" in available_backbones()
    encoder, feature_dim = build_backbone("tiny_custom", in_channels=2, image_size=6)
    assert feature_dim == 5
    assert encoder(torch.randn(3, 2, 6, 6)).shape == (3, 5)


def test_registered_custom_backbone_is_cleaned_up() -> None:
    # Relies on the previous test's isolated registry having been discarded.
    assert "tiny_custom" not in available_backbones()


def test_custom_builder_with_wrong_feature_dim(isolated_registry: dict) -> None:
    @register_backbone("wrong_dim")
    def build_wrong(in_channels: int) -> tuple[nn.Module, int]:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), 7

    with pytest.raises(ValueError, match="feature_dim=7"):
        build_backbone("wrong_dim", in_channels=3, image_size=4)


@pytest.mark.parametrize(("size", "flat"), [(32, 400), (28, 400), (8, 64)])
def test_lenet5_flattens_its_final_map(size: int, flat: int) -> None:
    encoder, dim = build_backbone("lenet5", in_channels=1, image_size=size)
    assert dim == 84 and encoder.flat_dim == flat
    assert encoder.head[0].in_features == flat
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in encoder.modules())


@pytest.mark.parametrize("name", available_backbones())
def test_every_registered_backbone_overfits_100_images(name: str, digits) -> None:
    torch.manual_seed(0)
    X = torch.from_numpy(digits.X_train[:100]).unsqueeze(1)
    y = torch.from_numpy(digits.y_train[:100]).long()
    encoder, dim = build_backbone(name, in_channels=1, image_size=tuple(X.shape[2:]))
    model = nn.Sequential(encoder, nn.Linear(dim, 10))
    # full-batch Adam; ResNet-18 is the slow one on a CPU and needs fewest steps
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3 if name == "resnet18" else 3e-3)
    model.train()
    for _ in range({"resnet18": 12, "small_cnn": 30}.get(name, 60)):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():  # fitting capacity: batch statistics, as in training
        accuracy = (model(X).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.95, (name, accuracy)
