"""ember.data: datasets, samplers and the DataLoader, with PyTorch's names and semantics.

Example:
    >>> import ember
    >>> from ember.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(ember.randn(10, 3), ember.arange(10))
    >>> x, y = next(iter(DataLoader(ds, batch_size=4, shuffle=True)))
    >>> x.shape, y.shape
    ((4, 3), (4,))
"""

from ember._src.data.collate import default_collate, default_convert
from ember._src.data.csv_dataset import CSVDataset
from ember._src.data.dataloader import DataLoader
from ember._src.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from ember._src.data.digits import Digits
from ember._src.data.mnist import MNIST, FashionMNIST
from ember._src.data.npz_dataset import NPZDataset
from ember._src.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from ember._src.data.worker import WorkerInfo, get_worker_info

__all__ = [
    "BatchSampler",
    "CSVDataset",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "Digits",
    "FashionMNIST",
    "IterableDataset",
    "MNIST",
    "NPZDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
