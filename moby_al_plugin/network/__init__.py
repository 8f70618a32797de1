"""The network family: backbones, their pretrained weights, the MoBY network, loss and momentum.

``moby_al_plugin.network`` re-exports every public name of its modules, and
stands in for the single module ``moby_al_plugin.moby`` of release 0.1.0
(pickles name it).
"""

from .backbones import *  # noqa: F403
from .backbones import __all__ as _backbones
from .input_resize import *  # noqa: F403
from .input_resize import __all__ as _resize
from .moby_loss import *  # noqa: F403
from .moby_loss import __all__ as _loss
from .moby_network import *  # noqa: F403
from .moby_network import __all__ as _network
from .momentum import *  # noqa: F403
from .momentum import __all__ as _momentum
from .pretrained_weights import *  # noqa: F403
from .pretrained_weights import __all__ as _weights

__all__ = [*_backbones, *_weights, *_resize, *_network, *_loss, *_momentum]
