#!/usr/bin/env python3
"""Reference values for shared/src/domain/stats.rs, computed with SciPy.

Run in a throwaway venv (nothing here is a project dependency):
    python3 -m venv /tmp/scipy-venv && /tmp/scipy-venv/bin/pip install scipy numpy
    /tmp/scipy-venv/bin/python infra/stats_reference.py > shared/fixtures/stats_reference.json

The distribution functions and the Welch and chi-square tests are SciPy's own.
Wilson, the pooled z-test, the sample sizes and the sequential interval are
written out here from their textbook / GrowthBook formulas on SciPy's normal
distribution, independently of the Rust code.
"""
import json
import math

import numpy as np
from scipy import stats

out = {}

out["normal_cdf"] = [[x, stats.norm.cdf(x)] for x in
                     [-8.0, -5.0, -3.2, -1.96, -1.0, -0.1, 0.0, 0.3, 1.0, 1.644853627, 2.5, 4.0, 6.0]]
out["normal_sf"] = [[x, stats.norm.sf(x)] for x in [0.5, 1.96, 3.0, 5.0, 8.0, 12.0]]
out["normal_quantile"] = [[p, stats.norm.ppf(p)] for p in
                          [1e-10, 1e-5, 0.001, 0.005, 0.02, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 0.9, 0.95,
                           0.975, 0.995, 0.999, 1 - 1e-7]]
out["t_cdf"] = [[t, df, stats.t.cdf(t, df)] for t, df in
                [(-3.0, 1), (0.5, 1), (2.0, 2.5), (-1.2, 4), (2.228138852, 10), (1.0, 17.3), (-2.7, 30),
                 (1.96, 120), (3.5, 1000.7), (-0.01, 50000), (2.0, 98765.4)]]
out["chi2_sf"] = [[x, k, stats.chi2.sf(x, k)] for x, k in
                  [(0.1, 1), (3.841458821, 1), (10.0, 1), (2.0, 2), (5.99, 2), (7.0, 3), (30.0, 3),
                   (0.5, 4), (25.0, 9), (100.0, 50)]]


def wilson(k, n, conf):
    z = stats.norm.ppf(1 - (1 - conf / 100) / 2)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z / den * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [max(0.0, centre - half), min(1.0, centre + half)]


out["wilson"] = [[k, n, c, *wilson(k, n, c)] for k, n, c in
                 [(0, 10, 95), (1, 10, 95), (5, 10, 90), (10, 10, 99), (37, 1000, 95), (480, 5000, 99),
                  (123456, 1000000, 95), (3, 7, 90)]]


def ztest(xa, na, xb, nb):
    p = (xa + xb) / (na + nb)
    se = math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
    z = (xb / nb - xa / na) / se
    return [z, 2 * stats.norm.sf(abs(z))]


out["ztest"] = [[xa, na, xb, nb, *ztest(xa, na, xb, nb)] for xa, na, xb, nb in
                [(100, 1000, 120, 1000), (50, 1000, 50, 1000), (200, 5000, 260, 5000), (10, 80, 25, 95),
                 (3000, 50000, 3300, 50000), (1, 2, 2, 3)]]

rng = np.random.default_rng(8)
welch = []
for na, nb in [(5, 7), (30, 30), (200, 150), (1000, 1200)]:
    a = rng.integers(0, 50000, na).astype(np.int64)
    b = rng.integers(0, 60000, nb).astype(np.int64)
    a[: na // 2] = 0
    res = stats.ttest_ind_from_stats(a.mean(), a.std(ddof=1), na, b.mean(), b.std(ddof=1), nb, equal_var=False)
    welch.append([na, int(a.sum()), int((a * a).sum()), nb, int(b.sum()), int((b * b).sum()),
                  float(res.statistic), float(res.pvalue)])
out["welch"] = welch

srm = []
for observed, alloc in [([5000, 5000], [50, 50]), ([5100, 4900], [50, 50]), ([5300, 4700], [50, 50]),
                        ([3400, 3300, 3300], [34, 33, 33]), ([7000, 2000, 1000], [70, 20, 10]),
                        ([900, 100], [80, 20])]:
    total = sum(observed)
    res = stats.chisquare(observed, [total * a / 100 for a in alloc])
    srm.append([observed, alloc, float(res.statistic), float(res.pvalue)])
out["srm"] = srm


def n_prop(p1, mde, alpha, power):
    p2 = p1 * (1 + mde)
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pbar = (p1 + p2) / 2
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2
    return math.ceil(n)


def n_mean(mean, sd, mde, alpha, power):
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(2 * z * z * sd * sd / (mean * mde) ** 2)


out["sample_size_proportion"] = [[p, m, a, w, n_prop(p, m, a, w)] for p, m, a, w in
                                 [(0.1, 0.1, 0.05, 0.8), (0.05, 0.2, 0.05, 0.8), (0.3, 0.05, 0.01, 0.8),
                                  (0.02, 0.5, 0.1, 0.8)]]
out["sample_size_mean"] = [[mu, sd, m, a, w, n_mean(mu, sd, m, a, w)] for mu, sd, m, a, w in
                           [(1000.0, 3000.0, 0.1, 0.05, 0.8), (250.0, 90.0, 0.05, 0.01, 0.8)]]


def sequential(effect, variance, n, alpha, tuning=5000.0):
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    s2 = variance * n
    factor = 2 * (n * rho2 + 1) / (n * n * rho2)
    half = math.sqrt(s2 * factor * math.log(math.sqrt(n * rho2 + 1) / alpha))
    # The always-valid p-value: the alpha' at which the halfwidth equals |effect|,
    # found numerically here (the Rust code uses the closed form).
    def gap(a):
        return s2 * factor * math.log(math.sqrt(n * rho2 + 1) / a) - effect * effect
    from scipy.optimize import brentq
    p = 1.0 if gap(1.0) >= 0 else brentq(gap, 1e-300, 1.0, xtol=1e-300, rtol=1e-15)
    return [effect - half, effect + half, min(1.0, p)]


seq = []
for effect, variance, n, alpha in [(0.02, 0.00018, 2000, 0.05), (0.01, 0.00004, 20000, 0.05),
                                   (0.001, 0.0001, 1000, 0.1), (0.05, 0.0001, 50000, 0.01)]:
    seq.append([effect, variance, n, alpha, *sequential(effect, variance, n, alpha)])
out["sequential"] = seq

# One case per line: small diffs when the table is regenerated.
print("{\n" + ",\n".join(
    f" {json.dumps(k)}: [\n  " + ",\n  ".join(json.dumps(row, default=float) for row in v) + "\n ]"
    for k, v in out.items()) + "\n}")
