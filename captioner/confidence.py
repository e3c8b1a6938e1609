"""Confidence that means something: Platt scaling (Platt 1999) of the probability a caption shows
for each noun, fitted on real photos against whether the noun is in them (calibrate.py fits it,
api.Captioner shows it). A noun said with "0.8" should be in the photo about 8 times in 10.
"""
from __future__ import annotations

import numpy as np


def platt(pairs, steps: int = 100) -> tuple[float, float]:
    """Fit a, b of sigmoid(a logit(p) + b) to (p, correct) pairs: Newton's method on the log-loss,
    each step halved until the loss falls (a full step can overshoot from a = 1, b = 0)."""
    p = np.clip(np.array([q for q, _ in pairs], float), 1e-6, 1 - 1e-6)
    design = np.stack([np.log(p / (1 - p)), np.ones(len(p))], 1)
    y, w = np.array([c for _, c in pairs], float), np.array([1.0, 0.0])
    ridge = 1e-3 * np.eye(2)   # few nouns: keep the fit finite where they separate
    loss = lambda w: float(np.sum(np.logaddexp(0, design @ w) - y * (design @ w)) + 0.5e-3 * w @ w)
    for _ in range(steps):
        fit = 1 / (1 + np.exp(-np.clip(design @ w, -50, 50)))
        hessian = design.T @ (design * (fit * (1 - fit))[:, None]) + ridge
        step, size = np.linalg.solve(hessian, design.T @ (fit - y) + ridge @ w), 1.0
        while loss(w - size * step) > loss(w) and size > 1e-4:
            size /= 2
        w = w - size * step
    return round(float(w[0]), 4), round(float(w[1]), 4)


def scaled_confidence(p, slope: float, bias: float):
    """The calibrated confidence of a noun the model gave probability p (numpy or float)."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return 1 / (1 + np.exp(-(slope * np.log(p / (1 - p)) + bias)))
