"""ember.nn: modules, layers, losses and initialization (PyTorch's names)."""

from ember._src.nn.activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from ember._src.nn.attention import MultiheadAttention
from ember._src.nn.containers import ModuleDict, ModuleList, Sequential
from ember._src.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from ember._src.nn.dropout import Dropout, Dropout2d
from ember._src.nn.embedding import Embedding
from ember._src.nn.flatten import Flatten, Unflatten
from ember._src.nn.linear import Bilinear, Identity, Linear
from ember._src.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from ember._src.nn.module import Module, Parameter
from ember._src.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from ember._src.nn.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from ember._src.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from ember._src.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from ember.nn import functional, init, utils
