"""Checking other people's quantizers: ``verify``, the known conventions, golden vectors and
the whole-model report.

``vecq_ref.verify`` and ``vecq_ref.golden`` are the entry points; the modules here are
``verify`` (recover lattice, codes and α from an output and diagnose it), ``conventions``
(the released implementations' rules, evaluated exactly), ``golden`` (versioned test vectors
and ``check``) and ``report`` (per-tensor DQL of a whole checkpoint).
"""
