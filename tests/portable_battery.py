"""Fixed battery for tests/test_portable.py: prints one JSON object {item: sha256 of bytes}.

Run as ``python tests/portable_battery.py GOLDEN_DIR`` under different ``NUMBA_CPU_NAME`` and
``NUMBA_CACHE_DIR``; every quantizer output must hash the same (not collected by pytest).
"""

import hashlib
import json
import sys

import numpy as np

import vecq_ref as vq
from vecq_ref import baselines as B
from vecq_ref.quantize import METHODS


def _digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        if p is None:
            h.update(b"None")
        elif isinstance(p, (list, tuple)):
            h.update(_digest(*p).encode())
        elif isinstance(p, dict):
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        else:
            a = np.ascontiguousarray(p)
            h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _q(q):
    return _digest(q.codes, q.alpha, q.step, q.values, q.loss.orientation, q.loss.dql,
                   q.loss.relative_dql, q.loss.excess)


def main(golden_dir):
    rng = np.random.default_rng(1234)
    big = rng.standard_normal(3 * (1 << 14) + 77)  # several chunks, a ragged tail
    mat = rng.standard_normal((6, 2000)).astype(np.float32)
    out = {}
    for method in METHODS:
        for lattice in ("midrise", "midtread"):
            if method == "paper" and lattice == "midtread":
                continue
            out[f"quantize_{method}_{lattice}_tensor"] = _q(vq.quantize(big, 4, method,
                                                                        lattice))
            out[f"quantize_{method}_{lattice}_axis0"] = _q(vq.quantize(mat, 3, method, lattice,
                                                                       axis=0))
    out["quantize_param_k8_float32"] = _q(vq.quantize(big.astype(np.float32), 8))
    for method in ("exact", "grid", "alternating"):
        r = vq.search_step(big, 3, method)
        out[f"search_{method}"] = _digest(r.step, r.alpha, r.orientation, r.relative_dql)
        r = vq.search_step(mat, 4, method, axis=0)
        out[f"search_{method}_axis0"] = _digest(r.step, r.alpha, r.orientation,
                                                r.relative_dql)
    for name, fn in B.BASELINES.items():
        bits = {"bwn": 1, "twn": 2}.get(name, 3)
        out[f"baseline_{name}"] = _q(fn(big, bits))
    # The formats' level sets (docs/theory.md §2.1), weighted and not, per group and channel.
    h = rng.random(mat.shape[1]) + 0.25  # one importance per input column
    sets = {"full_signed": dict(lattice="midtread-full", signed_scale=True),
            "zp_integer": dict(zero_point="integer"), "nf4": dict(codebook="nf4"),
            "iq4_nl_signed": dict(codebook="iq4_nl", signed_scale=True)}
    for key, kw in sets.items():
        bits = 3 if "zp" in key else None if "nf4" in key or "iq4" in key else 4
        for method in ("exact", "grid", "alternating"):
            out[f"levelset_{key}_{method}_g16_weighted"] = _q(vq.quantize(
                mat, bits, method, group_size=16, weights=h, **kw))
        out[f"levelset_{key}_exact_axis0"] = _q(vq.quantize(mat[:, :64], bits, "exact", axis=0,
                                                                 **kw))
    out["vector_loss_weighted"] = _digest(*vq.vector_loss(mat, mat * 0.9 + 0.01,
                                                          weights=h).as_dict().values())
    loss = vq.vector_loss(big, big * 0.9 + 0.01)
    out["vector_loss"] = _digest(loss.orientation, loss.dql, loss.relative_dql, loss.excess)
    out["optimal_alpha"] = _digest(vq.optimal_alpha(big, np.round(big)))
    q = vq.quantize(big, 4)
    report = vq.verify(big, q.values, bits=4)
    out["verify"] = _digest(report.as_dict())
    out["compare"] = _digest(vq.compare(mat, bits=[2, 3]))
    out["golden"] = _digest(vq.golden.check(golden_dir, vq.quantize,
                                            values_rtol=0, alpha_rtol=0).as_dict())
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
