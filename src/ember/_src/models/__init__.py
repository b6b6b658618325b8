"""The Keras-style high-level API: Sequential / functional Model, the fit loop, callbacks."""
