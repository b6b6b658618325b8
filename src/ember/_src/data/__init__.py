"""ember.data's implementation; the public names are re-exported by ``ember.data``."""
