"""The network family: backbones, the MoBY network, its loss and its momentum branch.

``moby_al_plugin.network`` re-exports every public name of its modules, and
stands in for the single module ``moby_al_plugin.moby`` of release 0.1.0
(pickles name it).
"""

from .backbones import *  # noqa: F403
from .backbones import __all__ as _backbones
from .moby_loss import *  # noqa: F403
from .moby_loss import __all__ as _loss
from .moby_network import *  # noqa: F403
from .moby_network import __all__ as _network
from .momentum import *  # noqa: F403
from .momentum import __all__ as _momentum

__all__ = [*_backbones, *_network, *_loss, *_momentum]
