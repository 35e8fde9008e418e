"""Stop&Exit controller: shared definitions for training (torch) and serving (numpy).

Per token and per layer the controller picks one of three outcomes from the layer's hidden state
alone (normed by that exit's norm), so deciding costs a tiny MLP, not the vocabulary-sized head.
Two independent estimates drive it, each with its own label: P(exit) that this layer's prediction
equals the final layer's, and P(stop) that the final layer's prediction is wrong:
  EXIT     this layer's prediction already equals the final layer's: leave the network here;
  CONTINUE go on to the next layer;
  STOP     the final layer's prediction is likely wrong: end the suggestion before this token.

Stop is decided where the token is chosen, so it may also use that exit's confidence in its own top
token: P(stop) = sigmoid(a * stop_logit + b * top1_logprob + c), with (a, b, c) per layer fitted on the
calibration split against the same label ("stop calibration"). The hidden-state estimate alone lowered
the acceptance of shown suggestions on held-out code, while the head's own confidence tells wrong tokens
apart far better, so `tact train controller` fits a = 0 (models.train_lm.fit_stop_calibration). Without a
fitted calibration P(stop) is sigmoid(stop_logit).
"""

from __future__ import annotations

import numpy as np

CONTINUE, EXIT, STOP = 0, 1, 2
N_OUTCOMES = 3
CONTROLLER_OUTPUTS = 2  # logits of P(exit) and P(stop)
OUTCOME_NAMES = ("continue", "exit", "stop")


CONTROLLER_HIDDEN = 64
STOP_CALIBRATION = "stop_calibration"  # (L, 3) per layer [a, b, c] of P(stop); identity: [1, 0, 0]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=-1, keepdims=True)
    z = logits - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(x: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(x))


def controller_labels(layer_pred, final_pred, target) -> np.ndarray:
    """Training targets for one layer from arrays of token ids: (N, 2) of
    [this layer agrees with the final layer, the final layer is wrong]."""
    return np.stack([layer_pred == final_pred, final_pred != target], axis=-1).astype(np.float32)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return weight * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


class Controller:
    """Serving-side Stop&Exit controller (numpy): per layer, exit norm -> Linear -> ReLU -> Linear -> softmax."""

    def __init__(self, exit_norms: list[np.ndarray], weights: dict[str, np.ndarray] | None, eps: float):
        self.exit_norms = exit_norms  # one (D,) per layer; the last is the final norm
        self.eps = eps
        self.layers = []
        if weights:
            for i in range(len(exit_norms)):
                keys = [f"controller.{i}.0.weight", f"controller.{i}.0.bias", f"controller.{i}.2.weight", f"controller.{i}.2.bias"]
                if not all(k in weights for k in keys) or weights[keys[2]].shape[0] != CONTROLLER_OUTPUTS:
                    self.layers = []  # absent, or from an older controller layout: untrained
                    break
                self.layers.append(tuple(weights[k] for k in keys))
        cal = (weights or {}).get(STOP_CALIBRATION)
        self.stop_calibration = cal.astype(np.float32) if cal is not None and cal.shape == (len(exit_norms), 3) else None

    @property
    def trained(self) -> bool:
        return bool(self.layers)

    def _logits(self, layer: int, hidden: np.ndarray) -> np.ndarray:
        """(..., 2) logits of P(exit) and P(stop) from the hidden state alone."""
        w1, b1, w2, b2 = self.layers[layer]
        x = rms_norm(hidden, self.exit_norms[layer], self.eps)
        return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2

    def stop_probs(self, layer: int, hidden: np.ndarray, top_logprob: np.ndarray | float) -> np.ndarray:
        """P(stop) before the token exit `layer` would emit: hidden (..., D), top_logprob (...) the
        log-probability of that exit's top token -> (...). Zero without a trained controller."""
        if not self.layers:
            return np.zeros(hidden.shape[:-1], np.float32)
        if self.stop_calibration is None:
            z = self._logits(layer, hidden)[..., 1]
        else:
            a, b, c = self.stop_calibration[layer]
            z = b * np.asarray(top_logprob, np.float32) + c
            if a != 0:  # the shipped fit has a = 0: no MLP on the per-token path
                z = z + a * self._logits(layer, hidden)[..., 1]
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def probs(self, layer: int, hidden: np.ndarray) -> np.ndarray:
        """hidden: (..., D) after `layer` -> (..., 3): [P(continue), P(exit), P(stop)], with P(exit) and
        P(stop) independent sigmoids and P(continue) = (1 - P(exit)) (1 - P(stop)) for display."""
        if not self.layers:
            out = np.zeros(hidden.shape[:-1] + (N_OUTCOMES,), np.float32)
            out[..., CONTINUE] = 1.0
            return out
        p = 1.0 / (1.0 + np.exp(-self._logits(layer, hidden)))  # (..., 2)
        return np.stack([(1 - p[..., 0]) * (1 - p[..., 1]), p[..., 0], p[..., 1]], axis=-1).astype(np.float32)
