"""Confidence that means something: Platt scaling (Platt 1999) of the probability a caption shows
for each noun, fitted on real photos against whether the noun is in them (calibrate.py fits it,
api.Captioner shows it). A noun said with "0.8" should be in the photo about 8 times in 10.
"""
from __future__ import annotations

import numpy as np


def platt(pairs, steps: int = 100) -> tuple[float, float]:
    """Fit a, b of sigmoid(a logit(p) + b) to (p, correct) pairs (see `fit_logistic`)."""
    slope, bias = fit_logistic([[logit(p)] for p, _ in pairs], [c for _, c in pairs], steps)
    return slope[0], bias


def platt_with_evidence(triples, steps: int = 100) -> tuple[float, float, float]:
    """Fit a, c, b of sigmoid(a logit(p) + c logit(e) + b) to (p, e, correct) triples: the decoder's
    probability and the head's evidence for the noun (photos)."""
    (slope, evidence_slope), bias = fit_logistic([[logit(p), logit(e)] for p, e, _ in triples],
                                                 [c for _, _, c in triples], steps)
    return slope, evidence_slope, bias


def fit_logistic(inputs, correct, steps: int = 100, ridge: float | None = None) -> tuple[list[float], float]:
    """Weights and bias of sigmoid(w . x + b) for (x, correct) by Newton's method on the log-loss,
    each step halved until the loss falls (a full step can overshoot from w = (1, 0...), b = 0). A
    negative weight (a higher input meant a noun more often wrong: the input says nothing) is dropped
    and the rest fitted again; with none left, every noun shows how often nouns are right. `ridge`:
    an L2 penalty on the weights alone, the bias free; None: 1e-3 on both (a few nouns that separate)."""
    x, y = np.asarray(inputs, float).reshape(len(correct), -1), np.asarray(correct, float)
    keep = list(range(x.shape[1]))
    while True:
        penalty = None if ridge is None else np.diag([ridge] * len(keep) + [0.0])
        w = _newton(np.concatenate([x[:, keep], np.ones((len(y), 1))], 1), y, steps, penalty)
        if not keep or (w[:-1] >= 0).all():
            break
        keep = [k for k, weight in zip(keep, w[:-1]) if weight >= 0]
    weights = [0.0] * x.shape[1]
    for k, weight in zip(keep, w[:-1]):
        weights[k] = round(float(weight), 4)
    return weights, round(float(w[-1]), 4)


def _newton(design: np.ndarray, y: np.ndarray, steps: int, ridge=None) -> np.ndarray:
    w = np.zeros(design.shape[1])
    w[0] = 1.0 if design.shape[1] > 1 else 0.0
    ridge = 1e-3 * np.eye(len(w)) if ridge is None else ridge   # few nouns: keep the fit finite where they separate
    loss = lambda w: float(np.sum(np.logaddexp(0, design @ w) - y * (design @ w)) + 0.5 * w @ ridge @ w)
    for _ in range(steps):
        fit = 1 / (1 + np.exp(-np.clip(design @ w, -50, 50)))
        hessian = design.T @ (design * (fit * (1 - fit))[:, None]) + ridge
        step, size = np.linalg.solve(hessian, design.T @ (fit - y) + ridge @ w), 1.0
        while loss(w - size * step) > loss(w) and size > 1e-4:
            size /= 2
        w = w - size * step
    return w


def logit(p, eps: float = 1e-6):
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def scaled_confidence(p, slope: float, bias: float, evidence=None, evidence_slope: float = 0.0):
    """The calibrated confidence of a noun the model gave probability p (numpy or float), and whose
    classes the head gave `evidence` over the whole image (where the fit reads it)."""
    z = slope * logit(p) + bias
    if evidence_slope and evidence is not None:
        z = z + evidence_slope * logit(evidence)
    return 1 / (1 + np.exp(-z))
