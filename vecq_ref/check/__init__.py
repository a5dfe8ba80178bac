"""Checking other people's quantizers: ``verify``, the known conventions, golden vectors and
the whole-model report.

``vecq_ref.verify`` and ``vecq_ref.golden`` are the entry points; the modules here are
``verify`` (the report and its verdict), ``recover`` (lattice, β, α and codes of an output,
never a lattice whose codes do not fit the bits), ``diagnose`` (step rule, α rule, rounding,
lattice and straight-through by component, with DQL costs), ``conventions`` (the released
implementations' rules, evaluated exactly), ``released`` (the Keras expression in float32),
``golden`` (versioned test vectors and ``check``) and ``report`` (per-tensor DQL of a whole
checkpoint).
"""
