"""ember.nn.utils: gradient clipping and parameter/vector conversion."""

from ember._src.nn.utils.clip_grad import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)
