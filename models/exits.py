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

Exit is calibrated the same way ("exit calibration"), from that exit's own head: P(exit) = sigmoid(a *
exit_logit + b * top1_logprob + c * margin + d), margin being the log-probability gap between its top two
tokens, (a, b, c, d) per layer fitted on the calibration split against the exit label. On held-out code
(teacher forcing, threshold 0.9) the hidden-state estimate alone exits at a token the final layer would not
choose about one time in six; calibrated, one in thirteen, with more layers skipped (docs/code-model.md). It
costs a head per open exit the token passes (`EarlyExitRuntime.exit_features`; in fp32 about a layer's time inside
decoding, so early exits read the 8-bit head, `DecodeOptions.exit_head_weights`; docs/code-model.md), so only some exits are open
(``open_exits``): those that agree with the final layer often enough, and of those every EXIT_STRIDE-th.
Without a fitted calibration P(exit) is sigmoid(exit_logit) and no head runs before the exit.
"""

from __future__ import annotations

import math

import numpy as np

CONTINUE, EXIT, STOP = 0, 1, 2
N_OUTCOMES = 3
# How the dynamic policy turns P(exit) and P(stop) into a decision (``Controller.leaves``): "agreement" compares
# P(exit) with the exit threshold; "harm" compares 1 - (1 - P(exit)) (1 - P(stop)), so that a token also leaves where
# the last layer is likely wrong anyway (``exit_score``)
EXIT_RULES = ("agreement", "harm")
CONTROLLER_OUTPUTS = 2  # logits of P(exit) and P(stop)
CONTROLLER_PARTS = ("0.weight", "0.bias", "2.weight", "2.bias")  # of controller.{layer}: Linear, ReLU, Linear
OUTCOME_NAMES = ("continue", "exit", "stop")


CONTROLLER_HIDDEN = 64
STOP_CALIBRATION = "stop_calibration"  # (L, 3) per layer [a, b, c] of P(stop); identity: [1, 0, 0]
EXIT_CALIBRATION = "exit_calibration"  # (L, 4) per layer [a, b, c, d] of P(exit); identity: [1, 0, 0, 0]
EXIT_CALIBRATION_IDENTITY = (1.0, 0.0, 0.0, 0.0)
# (L, 4) per layer [a, b, c, d] of P(harm) = sigmoid(a * exit_logit + b * top1_logprob + c * margin + d), fitted on the
# label "this exit disagrees with the last layer and the last layer is right"; all zeros: not fitted (``exit_score``)
HARM_CALIBRATION = "harm_calibration"
# An exit that agrees with the final layer on less than half of the calibration tokens never lets a token
# leave: its row is [0, 0, 0, -inf], and no head runs there (held-out code: fewer wrong exits, a third fewer
# heads per token, about the same layers skipped).
MIN_EXIT_AGREEMENT = 0.5
NEVER_EXITS = (0.0, 0.0, 0.0, -math.inf)
# Of the exits that pass, every EXIT_STRIDE-th from the first stays open (the others: NEVER_EXITS). Each open exit
# a token passes costs a head, about a layer's time on this CPU; on held-out code every other exit gave about the
# same layers skipped for the same share of outputs identical to `full`, with half the checks (docs/code-model.md).
EXIT_STRIDE = 2


# Learned KV fill (models.train_lm.fit_kv_fill_maps): for an open exit l, per later layer j >= l + 2 a linear map
# from the exiting hidden state h (the output of layer l) to a prediction of layer j's input, which the exit's kv_fill
# graph (models.export.kv_fill_graph) projects to that layer's keys and values instead of h itself. Layer l + 1's
# input is h exactly. Stored in exit_heads.safetensors as KV_FILL_MAPS.{l}.weight (m, D, D), x_j = h @ weight[j-l-2]
# + bias[j-l-2], and KV_FILL_MAPS.{l}.bias (m, D), m = L - l - 2. Half of dynamic's ROUGE-L loss on calibration code
# came from the skipped layers' KV written from h itself (docs/code-model.md).
KV_FILL_MAPS = "kv_fill_maps"


def kv_fill_map_names(exit_layer: int) -> tuple[str, str]:
    """Tensor names (weight, bias) of exit ``exit_layer``'s learned KV fill maps."""
    return f"{KV_FILL_MAPS}.{exit_layer}.weight", f"{KV_FILL_MAPS}.{exit_layer}.bias"


def open_exits(agreement: list[float], stride: int = EXIT_STRIDE) -> list[bool]:
    """Which exits may let a token leave, from each layer's agreement with the final layer on the calibration
    split: those agreeing on at least MIN_EXIT_AGREEMENT of the tokens, every ``stride``-th from the first of
    them. The last layer is not an early exit."""
    first = next((i for i, a in enumerate(agreement[:-1]) if a >= MIN_EXIT_AGREEMENT), None)
    return [first is not None and i < len(agreement) - 1 and a >= MIN_EXIT_AGREEMENT and (i - first) % stride == 0
            for i, a in enumerate(agreement)]


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


def top_and_margin(logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """logp (..., V) log-probabilities -> (the top token's log-probability (...), its gap to the second
    best (...)): the exit-head features of the exit calibration."""
    top2 = np.partition(logp, -2, axis=-1)[..., -2:]  # (..., 2): second best, best
    return top2[..., 1], top2[..., 1] - top2[..., 0]


def exit_score(p_exit: np.ndarray | None, p_stop: np.ndarray | None, rule: str,
               p_harm: np.ndarray | None = None) -> np.ndarray:
    """What the exit threshold is compared with under ``rule`` (EXIT_RULES). Leaving early harms a suggestion only
    where the exit's token differs from the last layer's and the last layer's is right. "agreement" bounds the first
    chance alone: P(exit). "harm" bounds the chance of both and returns 1 minus it: ``p_harm``, the fitted estimate
    (HARM_CALIBRATION), where the model has one, else (1 - P(exit)) (1 - P(stop)), taking the two as independent.
    A token the last layer would likely get wrong leaves too, where the layers it skips would not have made it
    right. ``p_stop`` is read only by the product (None elsewhere)."""
    if rule == "agreement":
        return p_exit
    if rule == "harm":
        return 1.0 - (p_harm if p_harm is not None else (1.0 - p_exit) * (1.0 - p_stop))
    raise ValueError(f"unknown exit rule {rule!r}; one of {EXIT_RULES}")


def head_calibrated(row: np.ndarray, exit_logit: np.ndarray, head_features: tuple) -> np.ndarray:
    """sigmoid(a * exit_logit + b * top + c * margin + d) for one layer's row [a, b, c, d] of a calibration that reads
    the exit's head (EXIT_CALIBRATION, HARM_CALIBRATION); head_features: (top log-probability, margin) (...)."""
    a, b, c, d = row
    top, margin = head_features
    z = a * exit_logit + b * np.asarray(top, np.float32) + c * np.asarray(margin, np.float32) + d
    with np.errstate(over="ignore"):  # a far negative z gives 0, as it should
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return weight * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def exit_heads_problem(weights: dict[str, np.ndarray], n_layers: int, hidden_size: int | None = None) -> str:
    """What makes ``weights`` (an exit_heads.safetensors, its KV fill maps left out) another model's than one of
    ``n_layers`` layers (and, given, ``hidden_size`` wide), worded to follow its path; "" when nothing. Its exit norms
    (one per early exit), its controller (one per layer, of any layout: an older one is read as untrained) and its
    calibrations (a row per layer) must cover exactly those layers: ``Controller`` reads a controller or calibration
    that does not as none, and exit norms that do not as the final norm, so another model's file loaded and silently
    decoded without Stop or early exits. Exit norms and a controller of another width loaded and then failed every
    decode that read them."""
    def layers_of(prefix: str) -> set[int]:
        found = set()
        for name in weights:
            index = name[len(prefix):].split(".", 1)[0] if name.startswith(prefix) else ""
            if index.isdigit():
                found.add(int(index))
        return found

    norms, controller = layers_of("exit_norms."), layers_of("controller.")
    if norms and norms != set(range(n_layers - 1)):
        return f"holds exit norms for layers {min(norms)} to {max(norms)}, not for the first {n_layers - 1}"
    if controller and controller != set(range(n_layers)):
        return f"holds a controller for layers {min(controller)} to {max(controller)}, not for {n_layers}"
    for i in sorted(controller):
        absent = [k for k in CONTROLLER_PARTS if f"controller.{i}.{k}" not in weights]
        if absent:
            return f"lacks controller.{i}.{absent[0]}"
    for name, width in ((STOP_CALIBRATION, 3), (EXIT_CALIBRATION, 4), (HARM_CALIBRATION, 4)):
        if name in weights and weights[name].shape != (n_layers, width):
            return f"holds {name} of shape {tuple(weights[name].shape)}, not ({n_layers}, {width}): a row per layer"
    return "" if hidden_size is None else _width_problem(weights, sorted(norms), sorted(controller), hidden_size)


def _width_problem(weights: dict[str, np.ndarray], norms: list[int], controller: list[int], hidden_size: int) -> str:
    """What in ``weights`` does not fit hidden states of ``hidden_size`` ("" when nothing): exit norms of another
    length, or a controller whose first layer reads another width or whose parts disagree (a controller of an older
    layout, read as untrained, only needs to read this width)."""
    for i in norms:
        name = f"exit_norms.{i}.weight"
        if weights[name].shape != (hidden_size,):
            return f"holds {name} of shape {tuple(weights[name].shape)}, not ({hidden_size},) for hidden size " \
                   f"{hidden_size}"
    for i in controller:
        w1, b1, w2, b2 = (weights[f"controller.{i}.{k}"] for k in CONTROLLER_PARTS)
        if w1.ndim != 2 or w1.shape[1] != hidden_size:
            return f"holds controller.{i}.0.weight of shape {tuple(w1.shape)}, not (n, {hidden_size}) for " \
                   f"hidden size {hidden_size}"
        if w2.ndim == 2 and w2.shape[0] == CONTROLLER_OUTPUTS and not (
                b1.shape == (w1.shape[0],) and w2.shape == (CONTROLLER_OUTPUTS, w1.shape[0])
                and b2.shape == (CONTROLLER_OUTPUTS,)):
            return f"holds a controller.{i} whose parts do not fit together (shapes {tuple(w1.shape)}, " \
                   f"{tuple(b1.shape)}, {tuple(w2.shape)}, {tuple(b2.shape)})"
    return ""


class Controller:
    """Serving-side Stop&Exit controller (numpy): per layer, exit norm -> Linear -> ReLU -> Linear -> softmax."""

    def __init__(self, exit_norms: list[np.ndarray], weights: dict[str, np.ndarray] | None, eps: float):
        self.exit_norms = exit_norms  # one (D,) per layer; the last is the final norm
        self.eps = eps
        self.layers = []
        if weights:
            for i in range(len(exit_norms)):
                keys = [f"controller.{i}.{k}" for k in CONTROLLER_PARTS]
                if not all(k in weights for k in keys) or weights[keys[2]].shape[0] != CONTROLLER_OUTPUTS:
                    self.layers = []  # absent, or from an older controller layout: untrained
                    break
                self.layers.append(tuple(weights[k] for k in keys))
        def calibration(name: str, width: int, unfitted: tuple | None) -> np.ndarray | None:
            """The (L, width) calibration ``name``; None where absent, of another shape, or every row ``unfitted``."""
            cal = (weights or {}).get(name)
            if cal is None or cal.shape != (len(exit_norms), width):
                return None
            return None if unfitted is not None and np.allclose(cal, unfitted) else cal.astype(np.float32)

        self.stop_calibration = calibration(STOP_CALIBRATION, 3, None)
        self.exit_calibration = calibration(EXIT_CALIBRATION, 4, EXIT_CALIBRATION_IDENTITY)
        self.harm_calibration = calibration(HARM_CALIBRATION, 4, (0.0, 0.0, 0.0, 0.0))

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

    @property
    def exit_reads_head(self) -> bool:
        """True when P(exit) needs the exit's log-probabilities (a fitted exit calibration)."""
        return self.trained and self.exit_calibration is not None

    def may_exit(self, layer: int) -> bool:
        """False for an exit the calibration closed (NEVER_EXITS): P(exit) there is 0 whatever it sees."""
        return self.exit_calibration is None or bool(np.isfinite(self.exit_calibration[layer, 3]))

    def reads_head(self, layer: int) -> bool:
        """Whether ``leaves`` at `layer` needs that exit's log-probabilities: an open exit, calibrated."""
        return self.exit_reads_head and self.may_exit(layer)

    def exit_probs(self, layer: int, hidden: np.ndarray, head_features: tuple | None = None) -> np.ndarray:
        """P(exit) after `layer`: hidden (..., D); head_features (top log-probability (...), margin (...)) of
        that exit's head (``top_and_margin``), needed when ``exit_reads_head`` -> (...). Zero without a
        trained controller."""
        if not self.layers:
            return np.zeros(hidden.shape[:-1], np.float32)
        z = self._logits(layer, hidden)[..., 0]
        if self.exit_calibration is None:
            return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        if head_features is None:
            raise ValueError("the exit calibration needs the exit head's top log-probability and margin")
        return head_calibrated(self.exit_calibration[layer], z, head_features)

    def leaves(self, layer: int, hidden: np.ndarray, head_features: tuple | None, exit_threshold: float,
               stop_threshold: float, rule: str = "agreement") -> np.ndarray:
        """The dynamic policy's exit rule after `layer`: hidden (..., D), head_features (top log-probability,
        margin) of that exit's head (read only with ``exit_reads_head``) -> (...) bool. A token leaves when its
        ``exit_score`` under ``rule`` (EXIT_RULES) reaches the exit threshold and P(stop) there stays below the stop
        threshold (else the deeper layers decide)."""
        if not self.may_exit(layer):
            return np.zeros(hidden.shape[:-1], bool)
        if not self.exit_reads_head:
            p = self.probs(layer, hidden)
            return (exit_score(p[..., EXIT], p[..., STOP], rule) >= exit_threshold) & (p[..., STOP] < stop_threshold)
        p_harm = self.harm_probs(layer, hidden, head_features) if rule == "harm" else None
        p_exit = None if p_harm is not None else self.exit_probs(layer, hidden, head_features)  # P(harm) replaces it
        if rule == "harm" and p_harm is None:  # the product reads P(stop)
            p_stop = self.stop_probs(layer, hidden, head_features[0])
            score = exit_score(p_exit, p_stop, rule)
        else:
            score = exit_score(p_exit, None, rule, p_harm)
            if not (score >= exit_threshold).any():
                return np.zeros(hidden.shape[:-1], bool)  # most checks: none leaves, and no P(stop) is needed
            p_stop = self.stop_probs(layer, hidden, head_features[0])
        return (score >= exit_threshold) & (p_stop < stop_threshold)

    def harm_probs(self, layer: int, hidden: np.ndarray, head_features: tuple) -> np.ndarray | None:
        """P(harm) after `layer` (HARM_CALIBRATION): hidden (..., D), head_features (top log-probability, margin) of
        that exit's head -> (...); None where the model has no fitted harm calibration. Without an exit calibration
        no head runs before an exit, so the harm rule takes the product there."""
        if self.harm_calibration is None or not self.layers:
            return None
        return head_calibrated(self.harm_calibration[layer], self._logits(layer, hidden)[..., 0], head_features)

    def probs(self, layer: int, hidden: np.ndarray) -> np.ndarray:
        """hidden: (..., D) after `layer` -> (..., 3): [P(continue), P(exit), P(stop)], with P(exit) and
        P(stop) independent sigmoids and P(continue) = (1 - P(exit)) (1 - P(stop)) for display."""
        if not self.layers:
            out = np.zeros(hidden.shape[:-1] + (N_OUTCOMES,), np.float32)
            out[..., CONTINUE] = 1.0
            return out
        p = 1.0 / (1.0 + np.exp(-self._logits(layer, hidden)))  # (..., 2)
        return np.stack([(1 - p[..., 0]) * (1 - p[..., 1]), p[..., 0], p[..., 1]], axis=-1).astype(np.float32)
