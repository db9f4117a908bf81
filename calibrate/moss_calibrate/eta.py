"""Statistical efficiency eta, exactly as sim/converge/calibration.cpp defines it.

eta = tokens the baseline needs / tokens the compressed run needs to reach the same loss, averaged
(trapezoid rule, 201 levels uniform in loss) over the loss range both curves reach; each curve is
read on its running-minimum envelope, log(tokens) interpolated linearly in loss.
"""
import math

ETA_LEVELS = 201


def envelope(tokens, loss):
    """Points where the curve reaches a new lowest loss."""
    mt, ml = [], []
    for t, l in zip(tokens, loss):
        if ml and l >= ml[-1]:
            continue
        mt.append(t)
        ml.append(l)
    return mt, ml


def tokens_to_reach(tokens, loss, level):
    """Tokens the curve first needs to reach `level` (level within its envelope)."""
    mt, ml = envelope(tokens, loss)
    if level >= ml[0]:
        return mt[0]
    for i in range(1, len(ml)):
        if ml[i] > level:
            continue
        f = (ml[i - 1] - level) / (ml[i - 1] - ml[i])
        return math.exp(math.log(mt[i - 1]) + f * (math.log(mt[i]) - math.log(mt[i - 1])))
    return mt[-1]


def efficiency(base_tokens, base_loss, tokens, loss):
    """(eta, loss_lo, loss_hi) of a run against the baseline; None when the curves do not overlap."""
    _, mb = envelope(base_tokens, base_loss)
    _, mo = envelope(tokens, loss)
    lo, hi = max(mb[-1], mo[-1]), min(mb[0], mo[0])
    if not hi > lo:
        return None
    total = 0.0
    for i in range(ETA_LEVELS):
        level = lo + (hi - lo) * i / (ETA_LEVELS - 1)
        w = 0.5 if i in (0, ETA_LEVELS - 1) else 1.0
        total += w * tokens_to_reach(base_tokens, base_loss, level) / tokens_to_reach(tokens, loss, level)
    return total / (ETA_LEVELS - 1), lo, hi
