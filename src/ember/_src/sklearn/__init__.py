"""scikit-learn estimators wrapping ember models (imports scikit-learn)."""
