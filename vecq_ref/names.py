"""Display names: one table for the figures, ``compare``'s printed text and the docs.

Code says ``vecq_exact``; a reader sees "VecQ-exact". Every legend entry and axis label of
:mod:`vecq_ref.plotting` and :mod:`vecq_ref.reproduce`, the method column of
:func:`vecq_ref.compare.format_records` and ``report --plot`` take their words from here, so
the same method has the same name everywhere.

================================  ================================  ===========================
identifier (``compare``)          name                              levels at k bits
================================  ================================  ===========================
``vecq_param``                    VecQ-param                        2^k (midrise)
``vecq_paper``                    VecQ-paper                        2^k
``vecq_exact``                    VecQ-exact                        2^k
``vecq_grid``                     VecQ-grid                         2^k
``vecq_alternating``              VecQ-alternating                  2^k
``vecq_param_midtread``           VecQ-param midtread               2^k − 1 (midtread)
``vecq_exact_midtread``           VecQ-exact midtread               2^k − 1
``vecq_normalpha``                VecQ codes, norm-matched α        2^k
``bwn``                           BWN                               2 (k = 1)
``twn``                           TWN                               3 (k = 2)
``ul2q``                          μL2Q, printed λ                   2^k, offset β
``ul2q_code``                     μL2Q, code λ                      2^k, offset β
``dorefa``                        DoReFa                            2^k
``absmax``                        abs-max                           2^k − 1
``aciq``                          ACIQ                              2^k
``lloyd_max``                     Lloyd–Max                         2^k, non-uniform
``q4_0``, ``q5_0``, ``q8_0``       Q4_0 reference, ...               the format's (theory §7.2)
``q4_1``, ``q5_1``                Q4_1 reference, Q5_1 reference    2^k, real offset
``q4_0_search``, ``q5_0_search``  Q4_0 search, Q5_0 search          as Q4_0, Q5_0
``q4_1_search``, ``q5_1_search``  Q4_1 affine search, ...           as Q4_1, Q5_1
``iq4_nl``                        IQ4_NL search                     16, codebook
``gptq_sym``, ``gptq_asym``       GPTQ sym RTN, GPTQ asym RTN       2^k
``awq``, ``ct_sym``               AWQ RTN, compressed-tensors sym   2^k
``nf4``, ``fp4``                  bitsandbytes NF4, ... FP4         16, 15 (codebooks)
``exact_q4_0``, ``exact_nf4``...  exact optimum                     the format's level set
================================  ================================  ===========================

VecQ-param takes the closed-form step λ_k·σ (docs/theory.md §4.1), VecQ-paper the paper's
printed expression, VecQ-exact / -grid / -alternating the searched steps (§4.3, §4.4).
"""

from __future__ import annotations

import re

#: Display name of every method identifier (``compare``'s, and ``report``'s with ``vecq_``).
METHOD_NAMES = {
    "vecq_param": "VecQ-param",
    "vecq_paper": "VecQ-paper",
    "vecq_exact": "VecQ-exact",
    "vecq_grid": "VecQ-grid",
    "vecq_alternating": "VecQ-alternating",
    "vecq_param_midtread": "VecQ-param midtread",
    "vecq_paper_midtread": "VecQ-paper midtread",
    "vecq_exact_midtread": "VecQ-exact midtread",
    "vecq_grid_midtread": "VecQ-grid midtread",
    "vecq_alternating_midtread": "VecQ-alternating midtread",
    "vecq_normalpha": "VecQ codes, norm-matched α",
    "bwn": "BWN",
    "twn": "TWN",
    "ul2q": "μL2Q, printed λ",
    "ul2q_code": "μL2Q, code λ",
    "dorefa": "DoReFa",
    "absmax": "abs-max",
    "aciq": "ACIQ",
    "lloyd_max": "Lloyd–Max",
    "q4_0": "Q4_0 reference",
    "q4_0_search": "Q4_0 search",
    "q5_0": "Q5_0 reference",
    "q5_0_search": "Q5_0 search",
    "q8_0": "Q8_0 reference",
    "q4_1": "Q4_1 reference",
    "q4_1_search": "Q4_1 affine search",
    "q5_1": "Q5_1 reference",
    "q5_1_search": "Q5_1 affine search",
    "iq4_nl": "IQ4_NL search",
    "gptq_sym": "GPTQ sym RTN",
    "ct_sym": "compressed-tensors sym",
    "gptq_asym": "GPTQ asym RTN",
    "awq": "AWQ RTN",
    "nf4": "bitsandbytes NF4",
    "fp4": "bitsandbytes FP4",
    **{f"exact_{f}": "exact optimum" for f in ("q4_0", "q5_0", "q8_0", "q4_1", "q5_1", "iq4_nl",
                                               "int_sym", "int_zp", "nf4", "fp4")},
}

#: Display names of the models ``reproduce`` trains and of their datasets.
MODELS = {"mlp": "MLP", "lenet5": "LeNet-5"}
DATASETS = {"digits": "digits", "mnist5k": "MNIST (5k subset)", "mnist": "MNIST"}

#: Legend suffix of a method whose lattice carries an offset β (``compare``'s mark).
OFFSET_MARK = "*"
#: Legend suffix of a method with non-uniform levels.
NONUNIFORM_MARK = " (non-uniform)"

#: Axis labels of the quantities drawn (mathtext for symbols, words otherwise).
QUANTITIES = {
    "bits": "bits $k$",
    "weight_bits": "weight bits $k$",
    "epoch": "epoch",
    "lambda": r"$\lambda = s/\sigma$",
    "alpha": r"$\alpha$",
    "relative_dql": r"relative DQL $\|w - w_q\|^2 / \|w\|^2$",
    "relative_dql_ratio": "relative DQL ÷\n{method}'s (same levels)",
    "relative_dql_total": "relative DQL (size-weighted)",
    "l2_loss": r"L2 loss $\|w - \alpha v\|^2$",
    "J_o": "orientation loss $J_o$",
    "expected_J_o": "expected orientation loss $J_o$",
    "J_m": "modulus loss $J_m$",
    "excess": "excess DQL",
    "loss": "training loss",
    "test_loss": "test loss",
    "test_acc": "test accuracy",
    "train_acc": "training accuracy",
    "count": "count",
    "w_over_alpha": r"$w / \alpha$",
    "w1": "$w_1$",
    "w2": "$w_2$",
}

#: The two solutions of the toy example (paper Fig. 2).
SOLUTIONS = {"l2": "L2-iterative", "vector": "vector loss"}

#: Legend templates of every other series, ``{field}`` filled by :func:`series`.
SERIES = {
    "method": "{method}",
    "reference": "{method} (same levels) = 1",
    "reference_line": "{method} (reference)",
    "theory_lambda": r"Gaussian $\lambda_k$ (theory)",
    "optimum": r"$\lambda_k$ (minimum of each curve)",
    "bits_curve": "$k$ = {bits}",
    "searched_lambda": "{layer}, {method}",
    "lattice_points": r"lattice points $\alpha v$",
    "direction": "{solution}: direction of $v$",
    "solution_point": r"{solution}: $\alpha v$, DQL {value}",
    "envelope": r"nearest levels at each $\alpha$",
    "solution_curve": r"{solution}: codes {codes}, any $\alpha$",
    "solution_alpha": r"{solution}: $\alpha$ = {value}",
    "alpha0": r"max-based start $\alpha_0$",
    "float": "float",
    "float_accuracy": "float ({value})",
    "quantized": "{bits}-bit",
    "layer": "layer {layer}",
    "quantized_layer": "{bits}-bit, layer {layer}",
    "qat": "VecQ quantization-aware training",
    "ptq": "post-training VecQ-param",
    "codes": "codes (count)",
    "weights": r"$w / \alpha$ (count per unit)",
    "levels": "levels $v$",
}

_FIELD_PATTERNS = {
    "bits": r"\d+",
    "layer": r"(?:(?:" + "|".join(map(re.escape, MODELS.values())) + r") )?[\w.-]+",
    "value": r"[-+0-9.e]+",
    "codes": r"\[[-0-9, ]*\]",
}


def method_name(method, lattice="midrise"):
    """The display name of a method identifier (``"vecq_exact"`` → ``"VecQ-exact"``).

    Parameters
    ----------
    method : str
        An identifier of :data:`METHOD_NAMES`, or a VecQ search method (``"exact"``,
        ``"param"``, ...) as :func:`vecq_ref.quantize` names it.
    lattice : {"midrise", "midtread"}
        For bare VecQ search methods only.

    Returns
    -------
    str
        The display name; an unknown identifier comes back unchanged.

    Examples
    --------
    >>> method_name("vecq_normalpha"), method_name("exact", "midtread")
    ('VecQ codes, norm-matched α', 'VecQ-exact midtread')
    """
    if method in METHOD_NAMES:
        return METHOD_NAMES[method]
    key = f"vecq_{method}" + ("_midtread" if lattice == "midtread" else "")
    return METHOD_NAMES.get(key, method)


def level_set_name(ls):
    """A level set (:class:`vecq_ref.LevelSet`) as ``compare`` heads its group.

    Examples
    --------
    >>> from vecq_ref import level_set
    >>> level_set_name(level_set("midtread-full", 4, signed_scale=True))
    'midtread-full, codes −8…7, α of either sign'
    >>> level_set_name(level_set(bits=4, zero_point="integer"))
    'integer zero point, codes 0…15'
    >>> level_set_name(level_set(codebook="nf4"))
    'NF4 codebook'
    """
    if ls.codebook is not None:
        text = (f"{ls.name.upper()} codebook" if ls.name
                else f"codebook of {ls.codebook.size} levels")
    else:
        lo, hi = ls.code_range
        what = {"integer": "integer zero point", "float": "real offset"}.get(
            ls.zero_point, ls.lattice)
        text = f"{what}, codes {lo}…{hi}".replace("-", "−") if ls.zero_point is None else (
            f"{what}, codes {lo}…{hi}")
        text = text.replace("midtread−full", "midtread-full")
    return text + (", α of either sign" if ls.signed_scale else "")


def model_name(model):
    """The display name of a model identifier (``"lenet5"`` → ``"LeNet-5"``).

    Examples
    --------
    >>> model_name("lenet5"), model_name("mlp")
    ('LeNet-5', 'MLP')
    """
    return MODELS.get(model, model)


def dataset_name(dataset):
    """The display name of a dataset identifier (``"mnist5k"`` → ``"MNIST (5k subset)"``)."""
    return DATASETS.get(dataset, dataset)


def layer_name(layer):
    """A layer as a reader names it: ``"lenet5/fc1"`` → ``"LeNet-5 fc1"``, ``"fc1"`` unchanged.

    Examples
    --------
    >>> layer_name("lenet5/fc1"), layer_name("fc2")
    ('LeNet-5 fc1', 'fc2')
    """
    model, sep, rest = str(layer).partition("/")
    return f"{model_name(model)} {rest}" if sep else str(layer)


def marked_method_name(method, lattice=None):
    """:func:`method_name` with ``compare``'s marks: :data:`OFFSET_MARK` for an offset lattice
    (μL2Q), :data:`NONUNIFORM_MARK` for non-uniform levels (Lloyd–Max).

    ``lattice`` is the record's ``lattice`` (``"offset-midrise"``, ``"nonuniform"``, ...);
    without it the method's usual lattice is assumed.

    Examples
    --------
    >>> marked_method_name("ul2q"), marked_method_name("lloyd_max"), marked_method_name("aciq")
    ('μL2Q, printed λ*', 'Lloyd–Max (non-uniform)', 'ACIQ')
    """
    if lattice is None:
        lattice = _USUAL_LATTICE.get(method, "midrise")
    name = method_name(method)
    if str(lattice).startswith("offset"):
        return name + OFFSET_MARK
    if lattice == "nonuniform":
        return name + NONUNIFORM_MARK
    return name


_USUAL_LATTICE = {"ul2q": "offset-midrise", "ul2q_code": "offset-midrise",
                  "lloyd_max": "nonuniform"}


def series(kind, **fields):
    """A legend label from :data:`SERIES`, with ``method`` and ``solution`` looked up by name.

    Examples
    --------
    >>> series("searched_lambda", layer="MLP fc1", method="vecq_grid")
    'MLP fc1, VecQ-grid'
    >>> series("quantized", bits=4)
    '4-bit'
    """
    if "method" in fields:
        fields["method"] = method_name(fields["method"])
    if "solution" in fields:
        fields["solution"] = SOLUTIONS.get(fields["solution"], fields["solution"])
    return SERIES[kind].format(**fields)


def _marked_names():
    return [n + m for n in METHOD_NAMES.values() for m in ("", OFFSET_MARK, NONUNIFORM_MARK)]


def _pattern(template):
    alternatives = {"method": _marked_names(), "solution": SOLUTIONS.values()}
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos:m.start()]))
        field = m.group(1)
        if field in alternatives:
            out.append("(?:" + "|".join(map(re.escape, alternatives[field])) + ")")
        else:
            out.append(_FIELD_PATTERNS[field])
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return "".join(out)


def is_series_label(label):
    """Whether ``label`` is one that :func:`series` makes (a name from these tables).

    Examples
    --------
    >>> is_series_label("VecQ-exact"), is_series_label("vecq_exact")
    (True, False)
    """
    return any(re.fullmatch(_pattern(t), label) for t in SERIES.values())


__all__ = ["DATASETS", "METHOD_NAMES", "MODELS", "NONUNIFORM_MARK", "OFFSET_MARK", "QUANTITIES",
           "SERIES", "SOLUTIONS", "dataset_name", "is_series_label", "layer_name",
           "level_set_name",
           "marked_method_name", "method_name", "model_name", "series"]
