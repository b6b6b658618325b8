"""ember.tensorboard: log scalars, histograms, images, text, hparams, PR curves and embeddings.

PyTorch's ``torch.utils.tensorboard.SummaryWriter`` API, writing event files with tensorboardX
(``pip install 'ember[tensorboard]'``); view them with ``tensorboard --logdir runs``.
"""

from ember._src.tensorboard.writer import SummaryWriter

__all__ = ["SummaryWriter"]
