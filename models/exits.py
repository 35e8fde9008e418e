"""Stop&Exit controller: shared definitions for training (torch) and serving (numpy).

Per token and per layer the controller picks one of three outcomes from the layer's hidden state
and the confidence of that layer's exit distribution:
  EXIT     this layer's prediction already equals the final layer's: leave the network here;
  CONTINUE go on to the next layer;
  STOP     the final layer's prediction is likely wrong: end the suggestion before this token.
"""

from __future__ import annotations

import numpy as np

CONTINUE, EXIT, STOP = 0, 1, 2
N_OUTCOMES = 3
OUTCOME_NAMES = ("continue", "exit", "stop")


def controller_feature_size(hidden_size: int) -> int:
    return hidden_size + 3


def log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=-1, keepdims=True)
    z = logits - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def controller_features(logits: np.ndarray, normed: np.ndarray) -> np.ndarray:
    """logits: (..., V), normed: (..., D) -> (..., D + 3); numpy twin of `architecture.controller_inputs`."""
    logp = log_softmax(logits.astype(np.float32))
    p = np.exp(logp)
    top2 = -np.partition(-p, 1, axis=-1)[..., :2]
    entropy = -(p * logp).sum(-1, keepdims=True) / np.log(logits.shape[-1])
    return np.concatenate([normed, top2[..., :1], entropy, top2[..., :1] - top2[..., 1:2]], axis=-1).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(x))


def label_outcomes(layer_pred, final_pred, target):
    """Training labels for one layer (arrays of token ids): STOP where the final prediction is wrong,
    else EXIT where this layer agrees with the final layer, else CONTINUE."""
    out = np.where(layer_pred == final_pred, EXIT, CONTINUE)
    return np.where(final_pred != target, STOP, out)
