"""ember.onnx: run ONNX models with ember ops (import; export comes with the tracer).

Example:
    >>> import ember
    >>> callable(ember.onnx.load)
    True
"""

from ember._src.io.onnx_import import OnnxImportError, OnnxModel, OnnxModule, load
