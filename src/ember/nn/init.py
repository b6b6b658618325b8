"""ember.nn.init: in-place weight initialization with PyTorch's names and formulas.

Example:
    >>> import ember
    >>> from ember.nn import init
    >>> w = init.xavier_uniform_(ember.empty(4, 6))
    >>> w.shape
    (4, 6)
"""

from ember._src.nn.init import calculate_gain as calculate_gain
from ember._src.nn.init import constant_ as constant_
from ember._src.nn.init import eye_ as eye_
from ember._src.nn.init import kaiming_normal_ as kaiming_normal_
from ember._src.nn.init import kaiming_uniform_ as kaiming_uniform_
from ember._src.nn.init import normal_ as normal_
from ember._src.nn.init import ones_ as ones_
from ember._src.nn.init import orthogonal_ as orthogonal_
from ember._src.nn.init import trunc_normal_ as trunc_normal_
from ember._src.nn.init import uniform_ as uniform_
from ember._src.nn.init import xavier_normal_ as xavier_normal_
from ember._src.nn.init import xavier_uniform_ as xavier_uniform_
from ember._src.nn.init import zeros_ as zeros_
