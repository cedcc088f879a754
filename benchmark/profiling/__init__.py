"""``bench profile``: each method's training speed through the training engine against a bare PyTorch loop, and
where a step's time goes by kind of operator.

May import: every layer up to ``training``; never sweeps, the API or the CLI.
"""
