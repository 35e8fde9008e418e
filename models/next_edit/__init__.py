"""Next-edit prediction: examples, data (real changes and synthetic chains), the baseline, evaluation.

Nothing here imports torch or the language server.
"""
