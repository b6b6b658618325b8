"""ember.onnx: export models to ONNX and run ONNX models with ember ops.

Example:
    >>> import ember
    >>> callable(ember.onnx.export) and callable(ember.onnx.load)
    True
"""

from ember._src.io.onnx_export import OnnxExportError, default_opset, export
from ember._src.io.onnx_import import OnnxImportError, OnnxModel, OnnxModule, load
