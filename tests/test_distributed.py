"""MoBYEncoder over torch.distributed: two gloo processes on CPU, and the pretrain command.

The two-process work runs once per module (:func:`ranks`): two processes
spawned with ``torch.multiprocessing`` train, embed, stop and resume, and
hit the refusals, each rank saving what it saw; the tests compare the ranks
with each other and with one process.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from moby_al_plugin import MoBYClassifier, MoBYEncoder, distributed, load_digits_dataset
from moby_al_plugin.exceptions import MoBYALError
from tests.conftest import small_encoder as _small_encoder

ROOT = Path(__file__).resolve().parents[1]
WORLD = 2
#: 200 images in steps of 2 x 16: global batches of 29 and 28, so parts of 15 and 14
POOL = 200
BATCH = 16


def small_encoder(**params) -> MoBYEncoder:
    """The encoder tests' small encoder, at this file's batch size."""
    return _small_encoder(**{"batch_size": BATCH, **params})


def _keep(x, generator):
    return x


def _mirror(x, generator):
    return x.flip(-1)


#: A network without batch norm (LeNet-5, linear heads) and fixed views: over
#: two processes it computes what one process computes, up to rounding
# float32: the comparison is to float32's resolution (bfloat16 rounds half and whole
# batches differently)
EXACT = dict(backbone="lenet5", head_layout="linear", views=(_keep, _mirror), precision="fp32")
EXACT_POOL = 192  # 3 steps of 64 images: 32 per process, equal parts


def _state(encoder: MoBYEncoder) -> dict:
    return {k: v.detach().clone() for k, v in encoder.network_.state_dict().items()}


def _losses(encoder: MoBYEncoder) -> list[float]:
    return [epoch["loss"] for epoch in encoder.history_]


def _refusal(encoder: MoBYEncoder, X: np.ndarray) -> tuple[str | None, bool]:
    """The MoBYALError message of ``encoder.fit(X)``, and whether a network was built."""
    try:
        encoder.fit(X)
    except MoBYALError as exc:
        return str(exc), hasattr(encoder, "network_")
    return None, hasattr(encoder, "network_")


def _stop_after_one(encoder: MoBYEncoder, epoch: int) -> None:
    raise KeyboardInterrupt


def _rank_work(rank: int, folder: Path) -> dict:
    """What each rank does: the checks below read it back."""
    digits = load_digits_dataset()
    pool = digits.X_train[:POOL]
    out: dict = {}
    # a fit with batch norm and augmentations, then features
    encoder = small_encoder().fit(pool)
    out["state"], out["losses"] = _state(encoder), _losses(encoder)
    out["history"] = [dict(e) for e in encoder.history_]
    if rank == 0:
        encoder.save(folder / "encoder.pt")
    out["features"] = encoder.transform(digits.X_train[:201])  # 101 + 100 rows
    out["one_feature"] = encoder.transform(digits.X_train[:1])  # fewer rows than ranks
    # stopped after epoch 1 on every rank, then resumed from rank 0's checkpoint
    checkpoint = folder / "checkpoint.pt"
    try:
        small_encoder(checkpoint=checkpoint).fit(pool, on_epoch_end=_stop_after_one)
        out["stopped"] = False
    except KeyboardInterrupt:
        out["stopped"] = True
    out["epochs_in_checkpoint"] = MoBYEncoder.load(checkpoint).n_epochs_done_
    if rank == 0:  # kept for the single-process check below
        shutil.copy(checkpoint, folder / "checkpoint-epoch-1.pt")
    resumed = small_encoder(checkpoint=checkpoint).fit(pool)
    out["resumed_state"], out["resumed_losses"] = _state(resumed), _losses(resumed)
    # no batch norm, fixed views
    exact = small_encoder(**EXACT, batch_size=32).fit(digits.X_train[:EXACT_POOL])
    out["exact_losses"], out["exact_state"] = _losses(exact), _state(exact)
    # shuffled batch norm of the key branch, on 30 test images (15 per rank)
    images = torch.from_numpy(digits.X_test[:30, None])
    parts = distributed.part_sizes(30, WORLD)
    own = images[sum(parts[:rank]) : sum(parts[: rank + 1])]
    for mode in ("eval", "train"):
        sync = distributed.TrainingSync(distributed.current_world(), 30, 15, shuffle_seed=7)
        network = copy.deepcopy(encoder.network_).train(mode == "train")
        sync.attach(network)
        keys = sync.shuffled_keys(own, own.flip(-1), parts)
        out[f"{mode}_keys"] = [k.clone() for k in keys]
        out[f"{mode}_local_keys"] = network.momentum_keys(own.flip(-1))
    # refusals, every rank before training
    others = digits.X_train[POOL : 2 * POOL]
    out["same_length_other_images"] = _refusal(small_encoder(), pool if rank == 0 else others)
    out["other_length"] = _refusal(small_encoder(), pool if rank == 0 else pool[:150])
    out["other_settings"] = _refusal(small_encoder(batch_size=16 + 8 * rank), pool)
    out["one_checkpoint"] = _refusal(
        small_encoder(checkpoint=folder / "only-rank-0.pt" if rank == 0 else None), pool
    )
    out["pool_of_one"] = _refusal(small_encoder(), pool[:1])
    out["one_image_per_process"] = _refusal(small_encoder(batch_size=2), pool[:3])
    return out


def _worker(rank: int, port: int, folder: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    world = distributed.init_from_env("cpu")
    assert world == distributed.World(rank, WORLD, rank, True) and world.active
    try:
        torch.save(_rank_work(rank, Path(folder)), Path(folder) / f"rank{rank}.pt")
    finally:
        distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run :func:`_rank_work` on two gloo processes; every rank's results and the folder."""
    folder = tmp_path_factory.mktemp("two-ranks")
    started = time.perf_counter()
    context = mp.start_processes(
        _worker, args=(_free_port(), str(folder)), nprocs=WORLD, join=False, start_method="spawn"
    )
    # a rank stuck in a collective would wait for ever: stop both after a while
    while not context.join(timeout=5):
        if time.perf_counter() - started > 240:
            for process in context.processes:
                process.kill()
            pytest.fail("the two-process run did not finish in 240 s")
    results = [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return results, folder


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------- the world
def test_world_from_the_environment(monkeypatch):
    for name in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert distributed.current_world() == distributed.World(0, 1, 0, False)
    assert distributed.init_from_env() == distributed.World(0, 1, 0, False)  # no torchrun
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    world = distributed.current_world()
    assert world == distributed.World(1, 2, 1, False) and not world.active and not world.is_main
    with pytest.raises(MoBYALError, match="MASTER_ADDR, MASTER_PORT"):
        distributed.init_from_env()
    assert distributed.part_sizes(5, 2) == [3, 2] and distributed.part_sizes(1, 3) == [1, 0, 0]
    assert distributed.check_batches(200, 16, 2) == [29, 29, 29, 29, 28, 28, 28]
    assert distributed.rank_seed(5, 0) == 5 and distributed.rank_seed(5, 1) != 5


# -------------------------------------------------------------- training
def test_every_rank_holds_the_same_weights_queues_and_history(ranks):
    (first, second), _ = ranks
    assert _same(first["state"], second["state"])  # online, key branch, BN buffers, queues
    state = first["state"]
    for branch in ("encoder_momentum.", "projector_momentum."):
        assert any(k.startswith(branch) for k in state)
    # 2 epochs of 200 images went through a queue of 64 keys
    assert int(state["queue_pointer"]) == (2 * POOL) % 64
    assert first["losses"] == second["losses"]
    steps = [[b["train_loss"] for b in e["batches"]] for e in first["history"]]
    assert steps == [[b["train_loss"] for b in e["batches"]] for e in second["history"]]
    assert [len(s) for s in steps] == [7, 7]  # the steps of global batches 29 x 4, 28 x 3


def test_two_processes_of_half_batches_match_one_process(ranks, digits):
    (first, _), _ = ranks
    # No batch norm and fixed views: two processes of 32 images per step and
    # one of 64 compute the same steps (start, global batches, keys, queues)
    # and differ only in rounding: the gradient is the mean of two half-batch
    # gradients, the queue holds the keys in another column order. Measured:
    # 3e-8 relative on the losses, 1e-7 on the weights (float32's resolution);
    # rtol 1e-5 leaves room for other CPUs and is far below what a wrong
    # gradient average, key order or queue would change.
    one = small_encoder(**EXACT, batch_size=64).fit(digits.X_train[:EXACT_POOL])
    np.testing.assert_allclose(first["exact_losses"], _losses(one), rtol=1e-5)
    for name, value in _state(one).items():
        got = first["exact_state"][name]
        if name.startswith("queue_") and name != "queue_pointer":  # the same keys, reordered
            got, value = got.sort(dim=1).values, value.sort(dim=1).values
        torch.testing.assert_close(got, value, rtol=1e-4, atol=1e-5, msg=name)
    # With batch norm and augmentations the runs share start and global
    # batches, but each rank draws its own views and normalises its own half
    # (15 images, and a shuffled half for the keys) where one process
    # normalises all 29. Near chance level (2 log 65 = 8.3) the mean epoch
    # loss of the two-process run measured 0.04 to 0.49 above the one-process
    # run over seeds 0 to 5 (0.18 on average, about 0.05 of it from the
    # shuffled keys, the rest from the noisier half-batch statistics), while
    # the one-process loss itself spreads by 0.3 over those seeds. 0.6 covers
    # every seed measured, so rounding on another CPU cannot fail it; it is a
    # check of the scale of the objective, the exact run above checks the steps.
    one = small_encoder(batch_size=2 * BATCH).fit(digits.X_train[:POOL])
    np.testing.assert_allclose(first["losses"], _losses(one), atol=0.6)


def test_shuffled_batch_norm_of_the_key_branch(ranks, digits):
    (first, second), folder = ranks
    network = MoBYEncoder.load(folder / "encoder.pt").network_
    images = torch.from_numpy(digits.X_test[:30, None])
    strong, weak = images.flip(-1), images
    for result in (first, second):
        # eval mode, no batch statistics: the keys of the whole batch, in batch order
        for got, views in zip(result["eval_keys"], (strong, weak)):
            torch.testing.assert_close(got, network.eval().momentum_keys(views), rtol=0, atol=1e-5)
    # train mode: each rank normalises one part of the batch permuted alike everywhere
    order = torch.randperm(30, generator=torch.Generator().manual_seed(7))
    expected = [torch.empty(30, 16), torch.empty(30, 16)]
    for part in (order[:15], order[15:]):
        for keys, views in zip(expected, (strong, weak)):
            keys[part] = copy.deepcopy(network).train().momentum_keys(views[part])
    for rank, result in enumerate((first, second)):
        for got, want in zip(result["train_keys"], expected):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        # not the statistics of the rank's own images
        own = result["train_keys"][0][15 * rank : 15 * (rank + 1)]
        assert (own - result["train_local_keys"]).abs().max() > 1e-3


# -------------------------------------------------------------- features
def test_distributed_transform_is_the_single_process_transform_in_pool_order(ranks, digits):
    (first, second), folder = ranks
    encoder = MoBYEncoder.load(folder / "encoder.pt")
    single = encoder.transform(digits.X_train[:201])
    assert first["features"].shape == (201, encoder.feature_dim_)
    np.testing.assert_array_equal(first["features"], second["features"])
    np.testing.assert_allclose(first["features"], single, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        first["one_feature"], encoder.transform(digits.X_train[:1]), rtol=1e-5, atol=1e-6
    )


# ----------------------------------------------------------------- resume
def test_resume_after_an_interruption_matches_the_uninterrupted_run(ranks, digits):
    (first, second), folder = ranks
    for result in (first, second):
        assert result["stopped"] and result["epochs_in_checkpoint"] == 1
        assert _same(result["resumed_state"], first["state"])
        assert result["resumed_losses"] == first["losses"]
    # an unfinished checkpoint of two processes continues over two only
    with pytest.raises(MoBYALError, match=r"over 2 process\(es\) and this run has 1"):
        small_encoder(checkpoint=folder / "checkpoint-epoch-1.pt").fit(digits.X_train[:POOL])
    # a finished one is only loaded, by any number of processes
    loaded = small_encoder(checkpoint=folder / "checkpoint.pt").fit(digits.X_train[:POOL])
    assert loaded.fit_seconds_ == 0.0 and _same(_state(loaded), first["state"])


# --------------------------------------------------------------- refusals
def test_different_pools_or_settings_are_refused_on_every_rank_before_training(ranks):
    (first, second), _ = ranks
    for result in (first, second):
        message, trained = result["same_length_other_images"]
        assert "different pools" in message and not trained
        assert "rank 0: 200 images" in message and "rank 1: 200 images" in message
        message, trained = result["other_length"]
        assert "rank 0: 200 images" in message and "rank 1: 150 images" in message
        assert not trained
        message, trained = result["other_settings"]
        assert "batch_size: 16 on rank 0, 24 on rank 1" in message and not trained
        message, trained = result["one_checkpoint"]
        assert "checkpoint: '" in message and "None on rank 1" in message and not trained
    assert first["same_length_other_images"] == second["same_length_other_images"]


def test_a_world_larger_than_the_pool_is_refused(ranks):
    (first, second), _ = ranks
    for result in (first, second):
        message, trained = result["pool_of_one"]
        assert "world of 2 processes is larger than the pool of 1 image;" in message
        assert not trained
        message, trained = result["one_image_per_process"]
        assert "give a process 1 image(s) in a step" in message and not trained


# ---------------------------------------------------------------- command
def _torchrun(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [str(torchrun), "--nproc-per-node", str(WORLD), "--master-port", str(_free_port())]
    return subprocess.run(
        [*command, "-m", "moby_al_plugin", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def test_pretrain_under_torchrun_writes_an_encoder_the_classifier_starts_from(tmp_path, digits):
    pool = tmp_path / "pool.npy"
    np.save(pool, (digits.X_train[:160] * 255).round().astype(np.uint8))  # (N, H, W) uint8
    output = tmp_path / "encoder.pt"
    options = ["--epochs", "2", "--batch-size", "16", "--queue-size", "64", "--views", "digits"]
    result = _torchrun("pretrain", "--images", str(pool), "--output", str(output), *options)
    assert result.returncode == 0, result.stderr[-3000:]
    # rank 0 alone prints
    assert result.stdout.count("epoch 1/2: loss") == 1 and result.stdout.count("wrote ") == 1
    assert "160 images, small_cnn, 2 epochs, 2 process(es) x 16 images per step" in result.stdout
    encoder = MoBYEncoder.load(output)
    assert encoder.n_epochs_done_ == 2 and encoder.transform(digits.X_test[:5]).shape == (5, 128)
    net = MoBYClassifier(
        pretrained=str(output),
        queue_size=64,
        views="digits",
        max_epochs=1,
        batch_size=32,
        train_samples=None,
        random_state=0,
    )
    net.fit(digits.X_train[:60], digits.y_train[:60])
    source = encoder.network_.state_dict()
    assert torch.equal(net.module_.input_mean, source["input_mean"])


def test_pretrain_in_one_process_reads_npz_and_image_folders(tmp_path, digits, capsys):
    from PIL import Image

    from moby_al_plugin.cli import main

    archive = tmp_path / "pool.npz"
    np.savez(archive, X=digits.X_train[:100], y=digits.y_train[:100])
    folder = tmp_path / "images"
    for i in range(40):
        (folder / str(digits.y_train[i] % 2)).mkdir(parents=True, exist_ok=True)
        pixels = (digits.X_train[i] * 255).round().astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / str(digits.y_train[i] % 2) / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    options = ["--epochs", "1", "--batch-size", "16", "--queue-size", "32", "--image-size", "8"]
    # the training split of the archive; every readable file of the folder
    for images, n in ((archive, 80), (folder, 40)):
        output = tmp_path / f"{images.stem}.pt"
        assert main(["pretrain", "--images", str(images), "--output", str(output), *options]) == 0
        captured = capsys.readouterr()
        assert f"{n} images" in captured.out
        assert ("broken.png" in captured.err) == (images == folder)  # skipped and listed
        assert MoBYEncoder.load(output).transform(digits.X_test[:3]).shape == (3, 128)
    for images, message in (
        (tmp_path / "missing.npy", "no such file or folder"),
        (archive.with_suffix(".txt"), "expected a .npy file, an .npz archive or a folder"),
        (tmp_path / "flat.npy", "dtype uint8 and shape (4, 64)"),
    ):
        if images.suffix == ".txt":
            images.touch()
        if images.name == "flat.npy":  # feature rows, not images
            np.save(images, np.zeros((4, 64), dtype=np.uint8))
        command = ["pretrain", "--images", str(images), "--output", str(tmp_path / "x.pt")]
        assert main(command) == 2
        assert message in capsys.readouterr().err
    command = ["pretrain", "--images", str(archive), "--output", str(tmp_path)]
    assert main(command) == 2 and "is a folder" in capsys.readouterr().err


def test_pretrain_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from moby_al_plugin.cli import build_parser\n"
        "try:\n"
        "    build_parser().parse_args(['pretrain', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert "--images" in result.stdout and "torchrun" in result.stdout
    assert result.stdout.strip().endswith("no torch")


@pytest.mark.slow
def test_pretrain_killed_under_torchrun_resumes_to_the_same_encoder(tmp_path, digits):
    pool = tmp_path / "pool.npy"
    np.save(pool, (digits.X_train[:1000] * 255).round().astype(np.uint8))
    options = ["--images", str(pool), "--epochs", "8", "--batch-size", "32", "--views", "digits"]
    options += ["--queue-size", "256"]
    straight = _torchrun("pretrain", *options, "--output", str(tmp_path / "straight.pt"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    # SIGKILL of the agent and of both workers (torchrun starts them in
    # sessions of their own) once an epoch after the first is done
    checkpoint = ["--checkpoint", str(tmp_path / "checkpoint.pt")]
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc-per-node", str(WORLD), "--master-port", str(_free_port())]
    command += ["-m", "moby_al_plugin", "pretrain", *options, *checkpoint]
    command += ["--output", str(tmp_path / "resumed.pt")]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    log = tmp_path / "killed.log"
    with open(log, "w") as out:
        agent = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.perf_counter() + 180
        while "epoch 2/8" not in log.read_text() and time.perf_counter() < deadline:
            time.sleep(0.02)
        listing = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(agent.pid)], capture_output=True, text=True
        )
        for pid in [int(p) for p in listing.stdout.split()] + [agent.pid]:
            os.kill(pid, signal.SIGKILL)
        agent.wait()
    assert "wrote" not in log.read_text()
    resumed = _torchrun("pretrain", *options, *checkpoint, "--output", str(tmp_path / "resumed.pt"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "epoch 1/8" not in resumed.stdout and "epoch 8/8" in resumed.stdout  # continued
    a = MoBYEncoder.load(tmp_path / "straight.pt").network_.state_dict()
    b = MoBYEncoder.load(tmp_path / "resumed.pt").network_.state_dict()
    assert _same(a, b)
