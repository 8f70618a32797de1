"""skorch callbacks used by :class:`moby_al_plugin.MoBYClassifier`."""

from __future__ import annotations

from collections.abc import Sequence

from skorch.callbacks import Callback

__all__ = ["MilestoneLRDecay", "EpochProgress"]


class MilestoneLRDecay(Callback):
    """Multiply the learning rate by ``gamma`` at fractions of each fit's epochs.

    The paper trains 200 epochs per cycle and divides the rate by 10 at epochs
    120 and 160: ``milestones=(0.6, 0.8)`` of ``max_epochs``. The schedule
    restarts with every ``fit`` (every active-learning cycle), warm-started or
    not, because each fit is one training run of the paper's protocol.

    Parameters
    ----------
    milestones : sequence of float
        Fractions of ``max_epochs`` in (0, 1] after which the rate decays.
    gamma : float
        Decay factor.
    """

    def __init__(self, milestones: Sequence[float] = (0.6, 0.8), gamma: float = 0.1) -> None:
        self.milestones = milestones
        self.gamma = gamma

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        for fraction in self.milestones:
            if not 0.0 < fraction <= 1.0:
                raise ValueError(f"lr milestones must be fractions in (0, 1], got {fraction}.")
        self.epoch_ = 0
        self.milestone_epochs_ = sorted(round(f * net.max_epochs) for f in self.milestones)

    def on_epoch_begin(self, net, **kwargs) -> None:
        decays = sum(self.epoch_ >= m for m in self.milestone_epochs_)
        lr = net.lr * self.gamma**decays
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
        net.history.record("lr", lr)
        self.epoch_ += 1


class EpochProgress(Callback):
    """A tqdm progress bar over the epochs of each fit.

    Parameters
    ----------
    desc : str
        Label of the bar.
    disable : bool or None
        None shows the bar only when the output is a terminal.
    """

    def __init__(self, desc: str = "epochs", disable: bool | None = None) -> None:
        self.desc = desc
        self.disable = disable

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc=self.desc, leave=False,
                         disable=self.disable, unit="epoch")

    def on_epoch_end(self, net, **kwargs) -> None:
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.set_postfix(loss=f"{net.history[-1, 'train_loss']:.3f}", refresh=False)
            bar.update(1)

    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()
        self.bar_ = None  # tqdm objects do not pickle
