"""λ_k from first principles: the optimal normalized step for a known distribution (VECQ.md §4.1).

For ``x`` with a symmetric, unit-variance density ``f``, survival ``S(a) = P(x > a)`` and
partial mean ``G(a) = E[x·1{x > a}]``, the codes of the step ``λ`` (σ units) give

    E[x·v] = c0 + 2·Σ_j G(a_j)          E[v²] = e0 + 2·Σ_j m_j·S(a_j)     (j = 1 … M−1)

with ``M = 2^(k−1)`` and::

    midrise:  a_j = jλ,      m_j = 2j,     c0 = G(0), e0 = ¼
    midtread: a_j = (j−½)λ,  m_j = 2j − 1, c0 = 0,    e0 = 0.

(The Gaussian case is VECQ.md's ``φ(0) + 2Σφ(jλ)`` and ``2Σ(j+½)²[Φ((j+1)λ) − Φ(jλ)]``
after summation by parts.) The expected orientation is ``cos θ(λ) = E[xv]/√E[v²]`` and the
expected relative DQL is ``1 − E[xv]²/E[v²]``.

The "template" stationarity condition (reconstruction). Differentiating term by term,
``G'(a) = −a f(a)`` gives ``dE[xv]/dλ = (λ/2)·dE[v²]/dλ`` for both lattices, so

    d cos θ / dλ = ½·E[v²]' · (λ·E[v²] − E[xv]) / E[v²]^{3/2},

and since ``E[v²]' < 0`` the interior optimum solves ``λ·E[v²] = E[xv]``: the step equals the
least-squares scale α/σ (the Lloyd/Max self-consistency). We bracket every sign change of
``h(λ) = λE[v²] − E[xv]`` on a log grid, refine each with Brent's method to machine
precision, and keep the root with the largest ``cos θ``. For k = 1 midrise every step gives
the same codes; the self-consistent step ``4·G(0)`` (Max's 1.596 for the Gaussian) is returned.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _validation as V

DISTRIBUTIONS = ("gaussian", "laplace", "uniform")

#: The released VecQ code's table (VecQ.py), k = 1..8; 6/(2^k − 1) is used above 8 bits.
PAPER_LAMBDAS = (1.0000, 0.9957, 0.5860, 0.3352, 0.1881, 0.1041, 0.0569, 0.0308)
#: μL2Q (IJCNN 2019) Table I as printed, k = 1..8.
UL2Q_PRINTED = (1.5959, 0.9894, 0.5838, 0.3327, 0.1897, 0.1043, 0.0563, 0.0304)
#: μL2Q's released code table, k = 1..8.
UL2Q_CODE = (1.5950161625215948, 0.99529008541347519, 0.5872211503939504,
             0.3358904980253396, 0.18944224088629152, 0.10570877041455067,
             0.057082736023857356, 0.030482181036739827)
#: Max (1960), optimal uniform step for 2^k Gaussian levels (k = 1..4), as printed.
MAX_1960 = (1.596, 0.9957, 0.5860, 0.3352)
#: Max (1960), optimal 3-level (ternary) Gaussian step, as printed.
MAX_1960_TERNARY = 1.224


#: λ_k as float64 constants, k = 1..16 (midtread from 2), every lattice and distribution:
#: the roots of ``λ·E[v²] = E[xv]`` to 60 digits rounded once to the nearest double, so every
#: machine gets the same step. :func:`optimal_step` returns these; the double-precision root
#: finder :func:`_optimal_step` agrees within a few ulps (tests/test_tables.py).
# BEGIN LAMBDA TABLE (written by analysis/make_lambda_tables.py; do not edit)
_LAMBDA = {
    ('midrise', 'gaussian'): (
        float.fromhex('0x1.9884533d43651p+0'), float.fromhex('0x1.fdcaa53261456p-1'),
        float.fromhex('0x1.2c0abd7fa3d24p-1'), float.fromhex('0x1.573ed44bfe03dp-2'),
        float.fromhex('0x1.814ee8fae3d7ep-3'), float.fromhex('0x1.aa3df9646dbd7p-4'),
        float.fromhex('0x1.d1dc27229eb2bp-5'), float.fromhex('0x1.f802ce273abf9p-6'),
        float.fromhex('0x1.0e51a61684973p-6'), float.fromhex('0x1.1fe1d187272bfp-7'),
        float.fromhex('0x1.30bb66a040715p-8'), float.fromhex('0x1.40eb0b1041159p-9'),
        float.fromhex('0x1.507e546214ed8p-10'), float.fromhex('0x1.5f82843276e77p-11'),
        float.fromhex('0x1.6e03ea5a62e93p-12'), float.fromhex('0x1.7c0da9c67fd07p-13'),
    ),
    ('midtread', 'gaussian'): (
        float.fromhex('0x1.39587b1e904b5p+0'), float.fromhex('0x1.4d31afc7c9bd4p-1'),
        float.fromhex('0x1.69e4a7e9a980cp-2'), float.fromhex('0x1.8bc5e1e24a120p-3'),
        float.fromhex('0x1.b013c044119d8p-4'), float.fromhex('0x1.d5159c00c1eb9p-5'),
        float.fromhex('0x1.f9c6867df3ce5p-6'), float.fromhex('0x1.0ecc18f7c9855p-6'),
        float.fromhex('0x1.2023a597c2066p-7'), float.fromhex('0x1.30de88133440bp-8'),
        float.fromhex('0x1.40fdac7fa5deap-9'), float.fromhex('0x1.5088282f76182p-10'),
        float.fromhex('0x1.5f87ad2d2f161p-11'), float.fromhex('0x1.6e069d3e86663p-12'),
        float.fromhex('0x1.7c0f11e63ce37p-13'),
    ),
    ('midrise', 'laplace'): (
        float.fromhex('0x1.6a09e667f3bcdp+0'), float.fromhex('0x1.165f5e069de41p+0'),
        float.fromhex('0x1.763cdfc48ae04p-1'), float.fromhex('0x1.d80f2b3552697p-2'),
        float.fromhex('0x1.1eb5515970f55p-2'), float.fromhex('0x1.53506a78843a8p-3'),
        float.fromhex('0x1.899f059ab45bep-4'), float.fromhex('0x1.c148e9ebabc43p-5'),
        float.fromhex('0x1.f9fbbaaa5bc4cp-6'), float.fromhex('0x1.19bb3c669cb77p-6'),
        float.fromhex('0x1.36c4c575476bdp-7'), float.fromhex('0x1.540990fd6d3e0p-8'),
        float.fromhex('0x1.717dab3f91393p-9'), float.fromhex('0x1.8f18865e47eb1p-10'),
        float.fromhex('0x1.acd3df5b6c2eep-11'), float.fromhex('0x1.caaaffd306efbp-12'),
    ),
    ('midtread', 'laplace'): (
        float.fromhex('0x1.6a09e667f3bcdp+0'), float.fromhex('0x1.a4bcc0627e799p-1'),
        float.fromhex('0x1.f291f8c705726p-2'), float.fromhex('0x1.265d06803ae7ap-2'),
        float.fromhex('0x1.57c10717120c3p-3'), float.fromhex('0x1.8c306b95491f7p-4'),
        float.fromhex('0x1.c2c2635b3ce7ep-5'), float.fromhex('0x1.fad2711431962p-6'),
        float.fromhex('0x1.19f7b23908487p-6'), float.fromhex('0x1.36e67ec28fd67p-7'),
        float.fromhex('0x1.541c36236cc43p-8'), float.fromhex('0x1.7187e56243e38p-9'),
        float.fromhex('0x1.8f1e186ab645ap-10'), float.fromhex('0x1.acd6e3516c092p-11'),
        float.fromhex('0x1.caac9f71c2a3dp-12'),
    ),
    ('midrise', 'uniform'): (
        float.fromhex('0x1.bb67ae8584caap+0'), float.fromhex('0x1.bb67ae8584caap-1'),
        float.fromhex('0x1.bb67ae8584caap-2'), float.fromhex('0x1.bb67ae8584caap-3'),
        float.fromhex('0x1.bb67ae8584caap-4'), float.fromhex('0x1.bb67ae8584caap-5'),
        float.fromhex('0x1.bb67ae8584caap-6'), float.fromhex('0x1.bb67ae8584caap-7'),
        float.fromhex('0x1.bb67ae8584caap-8'), float.fromhex('0x1.bb67ae8584caap-9'),
        float.fromhex('0x1.bb67ae8584caap-10'), float.fromhex('0x1.bb67ae8584caap-11'),
        float.fromhex('0x1.bb67ae8584caap-12'), float.fromhex('0x1.bb67ae8584caap-13'),
        float.fromhex('0x1.bb67ae8584caap-14'), float.fromhex('0x1.bb67ae8584caap-15'),
    ),
    ('midtread', 'uniform'): (
        float.fromhex('0x1.279a74590331cp+0'), float.fromhex('0x1.fabfa2e1bc555p-2'),
        float.fromhex('0x1.d8f7208e6b82dp-3'), float.fromhex('0x1.c9b5595004f24p-4'),
        float.fromhex('0x1.c2717456e04bdp-5'), float.fromhex('0x1.bee5797875b61p-6'),
        float.fromhex('0x1.bd24d358dda85p-7'), float.fromhex('0x1.bc45d16e3be8ap-8'),
        float.fromhex('0x1.bbd6a42e906ecp-9'), float.fromhex('0x1.bb9f2269d204ep-10'),
        float.fromhex('0x1.bb8366bbf089bp-11'), float.fromhex('0x1.bb758a31d6596p-12'),
        float.fromhex('0x1.bb6e9c3ff5ca8p-13'), float.fromhex('0x1.bb6b255bcf824p-14'),
        float.fromhex('0x1.bb6969eeeeb99p-15'),
    ),
}
# END LAMBDA TABLE



def paper_lambda(bits):
    """λ of the released code: its 4-decimal table for k ≤ 8, 6/(2^k − 1) above."""
    bits = V.integer(bits, "bits", 1, V.MAX_BITS)
    return PAPER_LAMBDAS[bits - 1] if bits <= 8 else 6.0 / (2 ** bits - 1)


def _survival_and_partial_mean(a, dist):
    """S(a) and G(a) for a ≥ 0 under the unit-variance ``dist``."""
    if dist == "gaussian":
        from scipy import special  # imported on first use: keeps `import vecq_ref` fast

        return special.ndtr(-a), np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    if dist == "laplace":
        b = 1.0 / math.sqrt(2.0)
        e = np.exp(-a / b)
        return 0.5 * e, 0.5 * (a + b) * e
    r = math.sqrt(3.0)  # uniform on [−√3, √3]
    inside = np.clip(r - a, 0.0, None)
    return inside / (2.0 * r), np.clip(r * r - a * a, 0.0, None) / (4.0 * r)


def _density(a, dist):
    if dist == "gaussian":
        return np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    if dist == "laplace":
        b = 1.0 / math.sqrt(2.0)
        return np.exp(-a / b) / (2.0 * b)
    r = math.sqrt(3.0)
    return np.where(a < r, 1.0 / (2.0 * r), 0.0)


def _grid(bits, lattice):
    j = np.arange(1, 2 ** (bits - 1), dtype=np.float64)
    if lattice == "midrise":
        return j, 2.0 * j, 0.25
    return j - 0.5, 2.0 * j - 1.0, 0.0


def _check(bits, lattice, dist):
    lattice = V.lattice(lattice)
    bits = V.bits(bits, lattice)
    dist = V.choice(dist, "dist", DISTRIBUTIONS)
    return bits, lattice, dist


def _moments(lam, bits, lattice, dist):
    pos, mult, e0 = _grid(bits, lattice)
    s, g = _survival_and_partial_mean(pos * lam, dist)
    c0 = _survival_and_partial_mean(0.0, dist)[1] if lattice == "midrise" else 0.0
    return c0 + 2.0 * math.fsum(g), e0 + 2.0 * math.fsum(mult * s)


def expected_moments(lam, bits, lattice="midrise", dist="gaussian"):
    """``(E[x·v], E[v²])`` for unit-variance ``x ~ dist`` and codes of the step ``lam``."""
    bits, lattice, dist = _check(bits, lattice, dist)
    lam = V.real(lam, "lam", positive=True)
    return _moments(lam, bits, lattice, dist)


def expected_cosine(lam, bits, lattice="midrise", dist="gaussian"):
    """Expected ``cos θ = E[xv]/√E[v²]`` (0 when every code is 0)."""
    e1, e2 = expected_moments(lam, bits, lattice, dist)
    return e1 / math.sqrt(e2) if e2 > 0 else 0.0


def expected_orientation(lam, bits, lattice="midrise", dist="gaussian"):
    """Expected orientation loss ``1 − cos θ`` at the step ``lam`` (σ units)."""
    return 1.0 - expected_cosine(lam, bits, lattice, dist)


def expected_relative_dql(lam, bits, lattice="midrise", dist="gaussian"):
    """Expected relative DQL ``1 − E[xv]²/E[v²]`` with the least-squares α (VECQ.md §4.1)."""
    e1, e2 = expected_moments(lam, bits, lattice, dist)
    return 1.0 - e1 * e1 / e2 if e2 > 0 else 1.0


def expected_alpha(lam, bits, lattice="midrise", dist="gaussian"):
    """Expected least-squares scale α/σ = E[xv]/E[v²] at the step ``lam``."""
    e1, e2 = expected_moments(lam, bits, lattice, dist)
    return e1 / e2 if e2 > 0 else 0.0


def stationarity(lam, bits, lattice="midrise", dist="gaussian"):
    """``d cos θ / dλ`` at ``lam`` in closed form (zero at λ_k)."""
    bits, lattice, dist = _check(bits, lattice, dist)
    lam = V.real(lam, "lam", positive=True)
    pos, mult, _ = _grid(bits, lattice)
    e1, e2 = _moments(lam, bits, lattice, dist)
    # dE[v²]/dλ = 2·Σ m_j·(−a_j'·f(a_j)) with a_j = pos_j·λ.
    de2 = -2.0 * math.fsum(mult * pos * _density(pos * lam, dist))
    if e2 <= 0:
        return 0.0
    return 0.5 * de2 * (lam * e2 - e1) / e2 ** 1.5


@functools.cache
def _optimal_step(bits, lattice, dist):
    from scipy import optimize

    def h(lam):
        e1, e2 = _moments(lam, bits, lattice, dist)
        return lam * e2 - e1

    def cos(lam):
        e1, e2 = _moments(lam, bits, lattice, dist)
        return e1 / math.sqrt(e2) if e2 > 0 else -1.0

    grid = np.geomspace(1e-3 / 2 ** (bits - 1), 8.0, 241)
    hs = [h(x) for x in grid]
    best, best_cos = None, -np.inf
    for i in range(len(grid) - 1):
        if hs[i] < 0.0 < hs[i + 1] or hs[i] > 0.0 > hs[i + 1]:
            root = optimize.brentq(h, grid[i], grid[i + 1], xtol=1e-300,
                                   rtol=4 * np.finfo(float).eps, maxiter=500)
            c = cos(root)
            if c > best_cos:
                best, best_cos = root, c
    if best is None:  # pragma: no cover - every supported case has a sign change
        raise RuntimeError(f"no stationary step found for bits={bits}, {lattice}, {dist}")
    return best


def optimal_step(bits, lattice="midrise", dist="gaussian"):
    """Optimal normalized step λ_k = s/σ for ``x ~ dist`` (unit variance), from first principles.

    Parameters
    ----------
    bits : int
        Bitwidth k in [1, 16] (≥ 2 for midtread).
    lattice : {"midrise", "midtread"}
        Code set of VECQ.md §2.
    dist : {"gaussian", "laplace", "uniform"}
        The weight distribution assumed (each with unit variance).

    Returns
    -------
    float
        λ_k maximising the expected ``cos θ``; it satisfies ``λ·E[v²] = E[xv]``, i.e. the step
        equals the expected least-squares α/σ. The value is the correctly rounded float64 of
        the exact root, a constant in the source (``_LAMBDA``, written by
        ``analysis/make_lambda_tables.py`` with mpmath), so it is the same on every machine;
        the run-time root finder it was checked against can differ by a few ulps by CPU.

    Examples
    --------
    >>> round(optimal_step(2), 4)
    0.9957
    >>> round(optimal_step(2, lattice="midtread"), 3)
    1.224
    """
    bits, lattice, dist = _check(bits, lattice, dist)
    row = _LAMBDA.get((lattice, dist))
    if row is not None:
        return row[bits - (1 if lattice == "midrise" else 2)]
    return _optimal_step(bits, lattice, dist)  # pragma: no cover - the table covers all


def table(bits=range(1, 9), lattice="midrise", dist="gaussian"):
    """Rows ``{bits, lam, alpha, cos, orientation, relative_dql}`` for each bitwidth."""
    rows = []
    for k in bits:
        lam = optimal_step(k, lattice, dist)
        e1, e2 = _moments(lam, k, lattice, dist)
        cos = e1 / math.sqrt(e2)
        rows.append({"bits": int(k), "lattice": lattice, "dist": dist, "lam": lam,
                     "alpha": e1 / e2, "cos": cos, "orientation": 1.0 - cos,
                     "relative_dql": 1.0 - e1 * e1 / e2})
    return rows


def published_differences(bits=range(1, 9)):
    """Gaussian midrise λ_k against the published tables: ``{table: [(k, published, Δ)]}``.

    ``Δ = published − ours``; the paper's k = 1 entry (1.0, "any step") is skipped.
    """
    out = {}
    for name, values in (("vecq_released", PAPER_LAMBDAS), ("ul2q_printed", UL2Q_PRINTED),
                         ("ul2q_code", UL2Q_CODE), ("max_1960", MAX_1960)):
        rows = []
        for k in bits:
            if k > len(values) or (name == "vecq_released" and k == 1):
                continue
            ours = optimal_step(k)
            rows.append((int(k), values[k - 1], values[k - 1] - ours))
        out[name] = rows
    return out
