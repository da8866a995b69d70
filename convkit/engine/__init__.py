"""The executor: one contract for running work over many inputs (per-input results and
errors, fail-fast, progress events, ordered or unordered completion).
"""
