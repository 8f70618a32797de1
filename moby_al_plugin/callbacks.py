"""skorch callbacks used by :class:`moby_al_plugin.MoBYClassifier`."""

from __future__ import annotations

from collections.abc import Sequence

from skorch.callbacks import Callback

from .schedule import lr_factor

__all__ = ["LRSchedule", "EpochProgress"]


class LRSchedule(Callback):
    """Set the learning rate before every training step from the fit's true length.

    ``schedule="cosine"`` anneals the rate from ``net.lr`` towards 0 over the
    fit; ``"step"`` multiplies it by ``gamma`` after each fraction of
    ``milestones`` (the paper trains 200 epochs per cycle and divides the
    rate by 10 at epochs 120 and 160: ``(0.6, 0.8)``). Positions count
    optimiser steps, labelled and unlabelled batches alike, out of the net's
    ``total_steps_`` (epochs out of ``max_epochs`` for a net without it;
    see :func:`moby_al_plugin.schedule.lr_factor`). The schedule restarts
    with every ``fit`` and ``partial_fit`` (every active-learning cycle), at
    the net's ``momentum_step_`` (the steps already taken: nonzero only when
    a fit resumes from a checkpoint). The rate is recorded in the batch
    history (``"lr"``) and, at the start of each epoch, in the epoch history.

    Parameters
    ----------
    schedule : {"cosine", "step"}
        Shape of the schedule.
    milestones : sequence of float
        Fractions in (0, 1] of the fit after which a ``"step"`` schedule decays.
    gamma : float
        Decay factor of a ``"step"`` schedule.
    """

    def __init__(
        self,
        schedule: str = "cosine",
        milestones: Sequence[float] = (0.6, 0.8),
        gamma: float = 0.1,
    ) -> None:
        self.schedule = schedule
        self.milestones = milestones
        self.gamma = gamma

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        for fraction in self.milestones:
            if not 0.0 < fraction <= 1.0:
                raise ValueError(f"lr milestones must be fractions in (0, 1], got {fraction}.")
        lr_factor(0, 1, self.schedule)  # an unknown schedule fails here, before training
        total = getattr(net, "total_steps_", None)
        self.per_step_ = total is not None
        self.length_ = total if self.per_step_ else net.max_epochs
        self.step_ = int(getattr(net, "momentum_step_", 0) or 0) if self.per_step_ else 0
        self.epoch_ = 0

    def _apply(self, net, position: int) -> float:
        lr = float(net.lr) * lr_factor(
            position, self.length_, self.schedule, self.milestones, self.gamma
        )
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
        return lr

    def on_epoch_begin(self, net, **kwargs) -> None:
        position = self.step_ if self.per_step_ else self.epoch_
        net.history.record("lr", self._apply(net, position))
        self.epoch_ += 1

    def on_batch_begin(self, net, batch=None, training=False, **kwargs) -> None:
        if not training or not self.per_step_:
            return
        net.history.record_batch("lr", self._apply(net, self.step_))
        self.step_ += 1


class EpochProgress(Callback):
    """A tqdm progress bar over the epochs of each fit.

    A fit that resumes from a checkpoint starts the bar at the net's
    ``n_epochs_done_`` (epochs already done), when it has one.

    Parameters
    ----------
    desc : str
        Label of the bar.
    disable : bool or None
        None shows the bar only when the output is a terminal.
    key : str
        Epoch-history key shown as the loss.
    """

    def __init__(
        self, desc: str = "epochs", disable: bool | None = None, key: str = "train_loss"
    ) -> None:
        self.desc = desc
        self.disable = disable
        self.key = key

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        from tqdm.auto import tqdm

        done = int(getattr(net, "n_epochs_done_", 0) or 0)
        self.bar_ = tqdm(
            total=net.max_epochs,
            initial=done,
            desc=self.desc,
            leave=False,
            disable=self.disable,
            unit="epoch",
        )

    def on_epoch_end(self, net, **kwargs) -> None:
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.set_postfix(loss=f"{net.history[-1, self.key]:.3f}", refresh=False)
            bar.update(1)

    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()
        self.bar_ = None  # tqdm objects do not pickle
