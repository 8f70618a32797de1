"""Backbones that start from pretrained weights: a state-dict file, or torchvision's by name.

Nothing is downloaded: the weights are a torchvision ``resnet18(weights=None)``
drawn with a fixed seed and saved with ``torch.save``; the named case replaces
the one function that reads torch's cache (or downloads) with that file's tensors.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from sklearn.base import clone

from moby_al_plugin import DataNotFoundError, MoBYALError, MoBYClassifier, MoBYEncoder
from moby_al_plugin.network import pretrained_weights
from moby_al_plugin.network.backbones import build_backbone
from moby_al_plugin.network.input_resize import ResizeImages
from moby_al_plugin.network.moby_network import MoBYNetwork
from moby_al_plugin.network.pretrained_weights import (
    adapt_input_channels,
    resolve_weights,
    weights_identity,
    weights_names,
)

from .conftest import small_encoder, small_net


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    """A torchvision ResNet-18's state dict, drawn with seed 1 (not the tests' seed 0)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return torchvision.models.resnet18(weights=None).state_dict()


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory, resnet18_state) -> Path:
    path = tmp_path_factory.mktemp("weights") / "resnet18-seed1.pth"
    torch.save(resnet18_state, path)
    return path


@pytest.fixture
def cached_imagenet(monkeypatch, resnet18_state) -> list:
    """torchvision's weights by name, read from the file's tensors; the calls are recorded."""
    calls = []

    def from_cache(weights, progress=True):
        calls.append(weights)
        return resnet18_state

    monkeypatch.setattr(pretrained_weights, "torchvision_state_dict", from_cache)
    return calls


def _features(encoder: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    encoder.eval()
    with torch.no_grad():
        return encoder(x)


# ------------------------------------------------------------------ loading
def test_a_state_dict_file_is_loaded_and_changes_the_features(resnet18_file, resnet18_state):
    encoder, dim = build_backbone("resnet18", 3, 32, weights=resnet18_file)
    assert dim == 512
    # the file's tensors, exactly (the classification layer "fc" is ignored)
    for key in ("conv1.weight", "layer3.1.bn2.running_var", "layer4.0.downsample.0.weight"):
        assert torch.equal(encoder.state_dict()[key], resnet18_state[key])
    # with weights, "resnet18" is torchvision's ImageNet ResNet-18 (7x7 stem)
    assert encoder.conv1.kernel_size == (7, 7)
    fresh, _ = build_backbone("resnet18", 3, 32, weights=None)
    assert fresh.conv1.kernel_size == (3, 3)  # the CIFAR-style one without
    x = torch.rand(2, 3, 32, 32)
    random_start, _ = build_backbone("resnet18", 3, 32, weights=resnet18_file, load_weights=False)
    assert not torch.allclose(_features(encoder, x), _features(random_start, x))


def test_grey_images_get_the_rgb_filters_summed(resnet18_file, resnet18_state):
    encoder, _ = build_backbone("resnet18", 1, 28, weights=resnet18_file)
    assert encoder.conv1.weight.shape == (64, 1, 7, 7)
    torch.testing.assert_close(encoder.conv1.weight[:, 0], resnet18_state["conv1.weight"].sum(1))
    # a grey image through the adapted net = the RGB net on that image in three equal channels
    rgb, _ = build_backbone("resnet18", 3, 28, weights=resnet18_file)
    grey = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(
        _features(encoder, grey), _features(rgb, grey.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5
    )


def test_adapting_to_more_channels_keeps_the_response_size():
    weight = torch.randn(8, 3, 3, 3)
    six = adapt_input_channels(weight, 6)
    assert six.shape == (8, 6, 3, 3)
    torch.testing.assert_close(six.sum(1), weight.sum(1))
    assert torch.equal(adapt_input_channels(weight, 3), weight)


def test_a_mismatched_file_is_refused_naming_the_first_mismatch(tmp_path, resnet18_state):
    bad = dict(resnet18_state)
    bad["layer1.0.conv1.weight"] = torch.zeros(64, 32, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(
        ValueError,
        match=r"'layer1\.0\.conv1\.weight' has shape \(64, 32, 3, 3\) "
        r"in the weights and \(64, 64, 3, 3\) in the backbone",
    ):
        build_backbone("resnet18", 3, 32, weights=tmp_path / "bad.pth")
    missing = {k: v for k, v in resnet18_state.items() if k != "layer2.0.bn1.bias"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(MoBYALError, match=r"'layer2\.0\.bn1\.bias' is missing from the weights"):
        build_backbone("resnet18", 3, 32, weights=tmp_path / "missing.pth")
    extra = {**resnet18_state, "layer9.weight": torch.zeros(3)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(MoBYALError, match=r"'layer9\.weight' \(shape \(3,\)\) is in the weights"):
        build_backbone("resnet18", 3, 32, weights=tmp_path / "extra.pth")
    # another architecture's file: its first mismatch, and how many in all
    with pytest.raises(
        MoBYALError,
        match=r"backbone 'resnet34': 'layer1\.2\.conv1\.weight'.*"
        r"mismatches in all",
    ):
        build_backbone("resnet34", 3, 32, weights=tmp_path / "extra.pth")


def test_a_registered_backbone_takes_a_file_that_fits_it_and_no_name(tmp_path):
    source, _ = build_backbone("small_cnn", 3, 16)
    torch.save(source.state_dict(), tmp_path / "small.pt")
    encoder, _ = build_backbone("small_cnn", 3, 16, weights=tmp_path / "small.pt")
    assert torch.equal(encoder.features[0].weight, source.features[0].weight)
    for name in ("small_cnn", "lenet5"):
        with pytest.raises(ValueError, match=f"backbone '{name}' has no pretrained weights"):
            build_backbone(name, 1, 28, weights="IMAGENET1K_V1")
    assert weights_names("small_cnn") == []


def test_an_unknown_name_lists_the_valid_ones():
    assert weights_names("resnet18") == ["DEFAULT", "IMAGENET1K_V1"]
    with pytest.raises(
        ValueError,
        match="unknown weights 'IMAGENET' for backbone 'resnet18'.*"
        "valid names: DEFAULT, IMAGENET1K_V1",
    ):
        resolve_weights("resnet18", "IMAGENET")
    with pytest.raises(ValueError, match="valid names: DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2"):
        MoBYNetwork("resnet50", weights="V3")


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere" / "resnet18.pth"
    with pytest.raises(DataNotFoundError, match=f"weights file '{path}': no such file"):
        resolve_weights("resnet18", path)
    not_a_state = tmp_path / "list.pt"
    torch.save([1, 2], not_a_state)
    with pytest.raises(MoBYALError, match="does not hold a state dict"):
        build_backbone("resnet18", 3, 32, weights=not_a_state)


def test_weights_by_name_come_from_the_cache_with_their_preprocessing(
    cached_imagenet, resnet18_state
):
    spec = resolve_weights("resnet18", "DEFAULT")
    assert spec.source == "ResNet18_Weights.IMAGENET1K_V1"
    assert (spec.crop_size, spec.mean, spec.std) == (
        224,
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )
    assert cached_imagenet == []  # resolving reads nothing
    net = MoBYNetwork(
        "resnet18",
        in_channels=1,
        n_classes=3,
        image_size=(8, 8),
        weights="IMAGENET1K_V1",
        queue_size=16,
    )
    assert [w.name for w in cached_imagenet] == ["IMAGENET1K_V1"]
    # both branches start from the weights; the grey channel takes the mean statistics
    for encoder in (net.encoder, net.encoder_momentum):
        torch.testing.assert_close(
            encoder.layer4[1].conv2.weight, resnet18_state["layer4.1.conv2.weight"]
        )
    torch.testing.assert_close(
        net.input_mean.flatten(), torch.tensor([(0.485 + 0.456 + 0.406) / 3])
    )
    torch.testing.assert_close(net.input_std.flatten(), torch.tensor([(0.229 + 0.224 + 0.225) / 3]))
    assert isinstance(net.input_resize, ResizeImages) and net.input_resize.size == (224, 224)
    assert tuple(net.standardise(torch.rand(2, 1, 8, 8)).shape) == (2, 1, 224, 224)
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    # a file keeps the inputs as they are
    plain = MoBYNetwork("resnet18", in_channels=1, n_classes=3, image_size=(8, 8), queue_size=16)
    assert plain.input_resize is None


def test_resize_images_shrinks_and_grows():
    x = torch.rand(2, 3, 10, 12)
    assert ResizeImages(6)(x).shape == (2, 3, 6, 6)
    assert ResizeImages((20, 24))(x).shape == (2, 3, 20, 24)
    assert ResizeImages((10, 12))(x) is x


# ---------------------------------------------------------------- estimators
def test_the_estimators_keep_weights_through_clone_params_and_pickle(resnet18_file):
    for estimator in (
        MoBYClassifier("resnet18", weights=str(resnet18_file)),
        MoBYEncoder("resnet18", weights=str(resnet18_file)),
    ):
        assert estimator.get_params()["weights"] == str(resnet18_file)
        assert clone(estimator).weights == str(resnet18_file)
        assert pickle.loads(pickle.dumps(estimator)).weights == str(resnet18_file)
        assert estimator.set_params(weights="DEFAULT").weights == "DEFAULT"
        assert clone(type(estimator)()).weights is None


def test_an_estimator_pickled_before_weights_existed_has_none():
    net = small_net()
    state = net.__getstate__()
    del state["weights"]
    restored = MoBYClassifier.__new__(MoBYClassifier)
    restored.__setstate__(state)
    assert restored.weights is None


def test_bad_weights_are_refused_before_any_training(tiny_digits, tmp_path, monkeypatch):
    X, y = tiny_digits["X"][:16], tiny_digits["y"][:16]
    started = []
    monkeypatch.setattr(MoBYClassifier, "initialize", lambda self: started.append(1))
    for weights, message in (
        ("IMAGENET1K_V9", "valid names: DEFAULT, IMAGENET1K_V1"),
        (str(tmp_path / "gone.pth"), "gone.pth': no such file"),
    ):
        with pytest.raises(ValueError, match=message):
            small_net(backbone="resnet18", weights=weights).fit(X, y)
    with pytest.raises(ValueError, match="backbone 'small_cnn' has no pretrained weights"):
        small_net(weights="DEFAULT").fit(X, y)
    assert started == []
    with pytest.raises(ValueError, match="backbone 'lenet5' has no pretrained weights"):
        small_encoder(backbone="lenet5", weights="DEFAULT").fit(X)


def test_the_encoder_starts_from_the_file_and_its_saved_file_keeps_them(
    tiny_digits, resnet18_file, resnet18_state, tmp_path, monkeypatch
):
    X = tiny_digits["X_pool"][:32]
    encoder = small_encoder(
        backbone="resnet18", weights=str(resnet18_file), max_epochs=1, batch_size=16
    )
    encoder.initialized_ = False
    encoder._record_images([X[:, None]])  # (N, C, H, W), as fit has it
    encoder.init_seed_ = 0
    encoder.initialize()
    start = encoder.network_.encoder.layer2[0].conv1.weight
    torch.testing.assert_close(start, resnet18_state["layer2.0.conv1.weight"])
    encoder.fit(X)
    encoder.save(tmp_path / "encoder.pt")
    # loading reads the saved state, not the weights again (the file may be gone)
    monkeypatch.setattr(
        pretrained_weights, "read_state_dict", lambda path: pytest.fail("weights read again")
    )
    loaded = MoBYEncoder.load(tmp_path / "encoder.pt")
    assert loaded.weights == str(resnet18_file)
    np.testing.assert_allclose(loaded.transform(X[:4]), encoder.transform(X[:4]), atol=1e-5)
    # the classifier fine-tunes from it: built for its weights, started from its state
    clf = small_net(backbone="resnet18", pretrained=tmp_path / "encoder.pt", max_epochs=1)
    clf.fit(tiny_digits["X"][:32], tiny_digits["y"][:32])
    assert clf.module_.encoder.conv1.kernel_size == (7, 7)
    other = small_net(backbone="resnet18", weights="DEFAULT", pretrained=tmp_path / "encoder.pt")
    with pytest.raises(MoBYALError, match="the pretrained encoder was built from weights="):
        other.fit(tiny_digits["X"][:32], tiny_digits["y"][:32])


def test_an_encoder_file_without_weights_still_loads(tiny_digits, tmp_path):
    from moby_al_plugin.encoder_file import read_encoder_file, save_encoder_file

    encoder = small_encoder(max_epochs=1).fit(tiny_digits["X_pool"][:64])
    encoder.save(tmp_path / "encoder.pt")
    payload = read_encoder_file(tmp_path / "encoder.pt")
    del payload["params"]["weights"]  # as written before the parameter existed
    save_encoder_file(payload, tmp_path / "old.pt")
    old = MoBYEncoder.load(tmp_path / "old.pt")
    assert old.weights is None
    np.testing.assert_allclose(
        old.transform(tiny_digits["X"][:4]), encoder.transform(tiny_digits["X"][:4]), atol=1e-6
    )


def test_a_classifier_starts_from_imagenet_weights_by_name(tiny_digits, cached_imagenet):
    # the named case end to end, small: 8 grey images resized to 224x224
    X, y = tiny_digits["X"][:8], tiny_digits["y"][:8]
    clf = small_net(
        backbone="resnet18",
        weights="IMAGENET1K_V1",
        max_epochs=1,
        batch_size=4,
        contrastive_weight=0.0,
        queue_size=8,
    )
    clf.fit(X, y)
    assert len(cached_imagenet) == 1
    assert clf.module_.input_resize.size == (224, 224)
    assert clf.predict_proba(X).shape == (8, len(np.unique(y)))


def test_weights_identity_is_the_name_or_the_file_content(tmp_path, resnet18_file):
    assert weights_identity("IMAGENET1K_V1") == "IMAGENET1K_V1"
    copy = tmp_path / "copy.pth"
    copy.write_bytes(resnet18_file.read_bytes())
    assert weights_identity(copy) == weights_identity(resnet18_file)
    assert weights_identity(copy).startswith("sha1:")


# ---------------------------------------------------------------- command line
def test_weights_reach_the_experiment_configuration_and_its_file(tmp_path):
    from moby_al_plugin.cli import _config_from, build_parser
    from moby_al_plugin.experiments.config import ExperimentConfig, ExperimentError

    parser = build_parser()
    args = parser.parse_args(["run", "--backbone", "resnet18", "--weights", "IMAGENET1K_V1"])
    config = _config_from(args)
    assert config.weights == "IMAGENET1K_V1"
    config.validate()
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["weights"]  # a config.json written before the field
    assert ExperimentConfig.from_dict(old).weights is None
    for bad, message in (
        (dataclasses.replace(config, weights="V7"), "valid names: DEFAULT, IMAGENET1K_V1"),
        (dataclasses.replace(config, backbone="small_cnn"), "backbone 'small_cnn' has no"),
        (dataclasses.replace(config, weights=str(tmp_path / "x.pth")), "x.pth': no such file"),
    ):
        with pytest.raises(ExperimentError, match=message):
            bad.validate()
    compare = parser.parse_args(["compare", "--weights", str(tmp_path / "w.pth")])
    assert _config_from(compare).weights == str(tmp_path / "w.pth")


def test_the_runner_hands_weights_to_every_network(tmp_path):
    from moby_al_plugin.experiments import runner
    from moby_al_plugin.experiments.config import ExperimentConfig
    from moby_al_plugin.selection.registry import STRATEGIES

    config = ExperimentConfig(backbone="resnet18", weights="IMAGENET1K_V1")
    data = type("Data", (), {"view_preset": "digits", "classes": np.arange(3)})()
    for name in ("random", "mobyv2al"):
        net = runner._make_net(config, STRATEGIES[name], data, False, None)
        assert net.weights == "IMAGENET1K_V1"
    data.X = np.zeros((4, 1, 8, 8), dtype=np.float32)
    with_weights = runner._pretrain_settings(config, data)
    without = runner._pretrain_settings(dataclasses.replace(config, weights=None), data)
    assert with_weights["weights"] == "IMAGENET1K_V1" and "weights" not in without


def test_pretrain_command_passes_weights(monkeypatch, tmp_path, resnet18_file):
    from moby_al_plugin import cli, pretraining

    seen = {}

    def fake_pretrain(X, checkpoint, on_epoch_end=None, **params):
        seen.update(params)
        raise MoBYALError("stopped by the test")

    monkeypatch.setattr(pretraining, "pretrain_encoder", fake_pretrain)
    np.save(tmp_path / "pool.npy", np.zeros((4, 1, 8, 8), dtype=np.float32))
    argv = [
        "pretrain",
        "--images",
        str(tmp_path / "pool.npy"),
        "--output",
        str(tmp_path / "enc.pt"),
        "--backbone",
        "resnet18",
        "--weights",
        str(resnet18_file),
    ]
    assert cli.main(argv) == 2
    assert seen["weights"] == str(resnet18_file) and seen["backbone"] == "resnet18"


def _photo_folder(folder: Path, n: int = 16) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(n):
        pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(pixels, mode="RGB").save(folder / f"photo-{i:02d}.png")
    return folder


def test_label_next_pretrains_from_the_weights_and_keys_its_cache_on_them(
    tmp_path, resnet18_file, resnet18_state, capsys
):
    from moby_al_plugin import load_encoder
    from moby_al_plugin.cli import main
    from moby_al_plugin.labelling import LabelStore
    from moby_al_plugin.labelling.commands import _training_options
    from moby_al_plugin.labelling.training import RoundSettings

    from .conftest import label_init

    folder = _photo_folder(tmp_path / "photos")
    work = tmp_path / "work"
    assert label_init(work, folder, "cat,dog", "--image-size", "12") == 0
    fast = ["--pretrain-epochs", "1", "--epochs", "1", "--train-samples", "16"]
    command = ["label", "next", "--workdir", str(work), "--n", "4", *fast, "--backbone", "resnet18"]
    assert main([*command, "--weights", str(resnet18_file)]) == 0
    with LabelStore(work) as store:
        assert len(store.pending()) == 4
    cached = list((work / "cache").glob("encoder-*.pt"))
    assert len(cached) == 1
    encoder = load_encoder(cached[0])
    assert encoder.weights == str(resnet18_file) and encoder.n_epochs_done_ == 1
    assert encoder.network_.encoder.conv1.kernel_size == (7, 7)
    # other weights: another key, a pretraining of their own
    other = dict(resnet18_state)
    other["conv1.weight"] = other["conv1.weight"] * 0.5
    torch.save(other, tmp_path / "other.pth")
    assert main([*command, "--weights", str(tmp_path / "other.pth")]) == 0
    assert len(list((work / "cache").glob("encoder-*.pt"))) == 2
    # bad weights: a named error before anything runs
    capsys.readouterr()
    assert main([*command, "--weights", "IMAGENET1K_V9"]) == 2
    assert "valid names: DEFAULT, IMAGENET1K_V1" in capsys.readouterr().err
    assert main([*command, "--backbone", "small_cnn", "--weights", "DEFAULT"]) == 2
    assert "backbone 'small_cnn' has no pretrained weights" in capsys.readouterr().err
    # the page's next runs get them too, a file by its absolute path
    settings = RoundSettings(backbone="resnet18", weights="IMAGENET1K_V1")
    settings.validate()
    with pytest.raises(Exception, match="give one of them"):
        dataclasses.replace(settings, encoder=str(resnet18_file)).validate()
    from moby_al_plugin.cli import build_parser

    args = build_parser().parse_args(
        ["label", "serve", "--workdir", str(work), "--weights", str(resnet18_file)]
    )
    options = _training_options(args)
    assert options[options.index("--weights") + 1] == str(resnet18_file.resolve())
