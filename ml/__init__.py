"""Concord's machine learning.

Only ``apps``, ``models``, ``services``, ``tasks``, ``admin`` and ``api`` know about Django; every subpackage
(consensus, phantoms, contours, lesions, ctgrade, training) is plain Python that runs on a GPU box with
nothing but numpy, scipy and torch installed.
"""
