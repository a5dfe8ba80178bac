"""Compute the λ_k constants of ``vecq_ref.tables`` to full precision with mpmath.

Run ``python analysis/make_lambda_tables.py`` and paste its output over the block between
``# BEGIN LAMBDA TABLE`` and ``# END LAMBDA TABLE`` in ``vecq_ref/tables.py`` (or pass
``--check`` to compare with the committed constants). Never run at import.

For each distribution (unit variance), lattice and k = 1..16 (midtread from 2) the step is the
stationary point of the expected orientation, ``h(λ) = λ·E[v²] − E[xv] = 0`` (VECQ.md §4.1,
docs/theory.md §4.1), with ``E[xv] = c0 + 2ΣG(a_j)`` and ``E[v²] = e0 + 2Σm_j·S(a_j)`` as in
``vecq_ref.tables``. The root is started at the double-precision root finder's answer (which
brackets every sign change on a log grid and keeps the best ``cos θ``), refined by Newton's
method in mpmath at 60 digits with the exact derivative ``h'(λ) = E[v²] + (λ/2)·dE[v²]/dλ``
until the step is below 1e-30 relative, and rounded once to the nearest float64. k = 1
midrise: every step gives the sign codes and the self-consistent step ``4·G(0)`` is used.
"""

from __future__ import annotations

import sys

import mpmath as mp

from vecq_ref import tables

mp.mp.dps = 60
SQRT2 = mp.sqrt(2)
SQRT3 = mp.sqrt(3)


def survival_partial_mean_density(a, dist):
    """S(a) = P(x > a), G(a) = E[x·1{x > a}] and f(a) for a ≥ 0, unit variance."""
    if dist == "gaussian":
        f = mp.exp(-a * a / 2) / mp.sqrt(2 * mp.pi)
        return mp.erfc(a / SQRT2) / 2, f, f
    if dist == "laplace":
        b = 1 / SQRT2
        e = mp.exp(-a / b)
        return e / 2, (a + b) * e / 2, e / (2 * b)
    if a >= SQRT3:
        return mp.mpf(0), mp.mpf(0), mp.mpf(0)
    return (SQRT3 - a) / (2 * SQRT3), (3 - a * a) / (4 * SQRT3), 1 / (2 * SQRT3)


def h_and_derivative(lam, bits, lattice, dist):
    half = 2 ** (bits - 1)
    e1 = survival_partial_mean_density(mp.mpf(0), dist)[1] if lattice == "midrise" else 0
    e2 = mp.mpf(1) / 4 if lattice == "midrise" else mp.mpf(0)
    de2 = mp.mpf(0)
    for j in range(1, half):
        pos = mp.mpf(j) if lattice == "midrise" else mp.mpf(j) - mp.mpf(1) / 2
        mult = 2 * j if lattice == "midrise" else 2 * j - 1
        s, g, f = survival_partial_mean_density(pos * lam, dist)
        e1 += 2 * g
        e2 += 2 * mult * s
        de2 -= 2 * mult * pos * f
    return lam * e2 - e1, e2 + lam / 2 * de2


def constant(bits, lattice, dist):
    if bits == 1:
        return float(4 * survival_partial_mean_density(mp.mpf(0), dist)[1])
    lam = mp.mpf(tables._optimal_step(bits, lattice, dist))
    for _ in range(20):
        h, dh = h_and_derivative(lam, bits, lattice, dist)
        step = h / dh
        lam -= step
        if abs(step) < mp.mpf(10) ** -30 * lam:
            break
    else:  # pragma: no cover
        raise RuntimeError(f"Newton did not converge: {bits} {lattice} {dist}")
    return float(lam)


def table():
    out = {}
    for dist in tables.DISTRIBUTIONS:
        for lattice in ("midrise", "midtread"):
            out[(lattice, dist)] = tuple(constant(k, lattice, dist)
                                         for k in range(1 if lattice == "midrise" else 2, 17))
    return out


def render(values):
    lines = ["# BEGIN LAMBDA TABLE (written by analysis/make_lambda_tables.py; do not edit)",
             "_LAMBDA = {"]
    for (lattice, dist), row in values.items():
        lines.append(f"    ({lattice!r}, {dist!r}): (")
        for i in range(0, len(row), 2):
            pair = " ".join(f"float.fromhex({v.hex()!r})," for v in row[i:i + 2])
            lines.append("        " + pair)
        lines.append("    ),")
    lines += ["}", "# END LAMBDA TABLE"]
    return "\n".join(lines)


if __name__ == "__main__":
    values = table()
    if "--check" in sys.argv:
        bad = [(key, k) for key, row in values.items() for k, v in enumerate(row)
               if tables._LAMBDA[key][k] != v]
        print("constants agree" if not bad else f"constants differ: {bad}")
        sys.exit(1 if bad else 0)
    print(render(values))
