"""CDHF acceptance model: predict whether a suggestion will be accepted, before and after generation.

Serving-safe (numpy and tree-sitter): ``features`` (the one feature function, shared by training and
serving), ``model`` (numpy inference, load/save), ``policy`` (thresholds by the CDHF rule, debounce).
Training-only (scikit-learn): ``train`` and ``evaluate``. ``cups`` and ``telemetry_source`` read
training data; ``scoring`` scores suggestions with the code model (onnxruntime).
"""
