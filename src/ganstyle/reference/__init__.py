"""The papers' datasets, published generators and evaluation protocol.

- :mod:`~ganstyle.reference.catalogue`: what the reference download scripts offer (``catalogue.yaml``).
- :mod:`~ganstyle.reference.fetching`: downloads that resume, fall back and never leave half a dataset.
- :mod:`~ganstyle.reference.importing`: the reference code's generator files as ganstyle checkpoints.
- :mod:`~ganstyle.reference.evaluation`: FID/KID on a test split as the papers report them.
"""
