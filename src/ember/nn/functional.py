"""ember.nn.functional: layers, activations, losses and attention as functions.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> F.relu(ember.tensor([-1.0, 2.0]))
    tensor([0., 2.])
"""

from ember._src.nn.conv import conv1d as conv1d
from ember._src.nn.conv import conv2d as conv2d
from ember._src.nn.conv import conv_transpose2d as conv_transpose2d
from ember._src.nn.functional import bilinear as bilinear
from ember._src.nn.functional import binary_cross_entropy as binary_cross_entropy
from ember._src.nn.functional import (
    binary_cross_entropy_with_logits as binary_cross_entropy_with_logits,
)
from ember._src.nn.functional import cosine_embedding_loss as cosine_embedding_loss
from ember._src.nn.functional import cosine_similarity as cosine_similarity
from ember._src.nn.functional import cross_entropy as cross_entropy
from ember._src.nn.functional import dropout as dropout
from ember._src.nn.functional import dropout2d as dropout2d
from ember._src.nn.functional import elu as elu
from ember._src.nn.functional import embedding as embedding
from ember._src.nn.functional import gelu as gelu
from ember._src.nn.functional import huber_loss as huber_loss
from ember._src.nn.functional import kl_div as kl_div
from ember._src.nn.functional import l1_loss as l1_loss
from ember._src.nn.functional import leaky_relu as leaky_relu
from ember._src.nn.functional import linear as linear
from ember._src.nn.functional import log_softmax as log_softmax
from ember._src.nn.functional import mse_loss as mse_loss
from ember._src.nn.functional import nll_loss as nll_loss
from ember._src.nn.functional import normalize as normalize
from ember._src.nn.functional import one_hot as one_hot
from ember._src.nn.functional import pad as pad
from ember._src.nn.functional import relu as relu
from ember._src.nn.functional import scaled_dot_product_attention as scaled_dot_product_attention
from ember._src.nn.functional import sigmoid as sigmoid
from ember._src.nn.functional import silu as silu
from ember._src.nn.functional import smooth_l1_loss as smooth_l1_loss
from ember._src.nn.functional import softmax as softmax
from ember._src.nn.functional import softplus as softplus
from ember._src.nn.functional import tanh as tanh
from ember._src.nn.normalization import batch_norm as batch_norm
from ember._src.nn.normalization import group_norm as group_norm
from ember._src.nn.normalization import layer_norm as layer_norm
from ember._src.nn.pooling import adaptive_avg_pool2d as adaptive_avg_pool2d
from ember._src.nn.pooling import adaptive_max_pool2d as adaptive_max_pool2d
from ember._src.nn.pooling import avg_pool1d as avg_pool1d
from ember._src.nn.pooling import avg_pool2d as avg_pool2d
from ember._src.nn.pooling import max_pool1d as max_pool1d
from ember._src.nn.pooling import max_pool2d as max_pool2d
