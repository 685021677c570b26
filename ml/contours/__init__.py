"""MRI joint-contour model (SPEC §7.1): vector-field targets, BasicUNet, walker, RMSE in mm.

Pipeline: :func:`locate.locate_joints` finds both joints on a slice; :mod:`data` crops a fixed-mm square
around each (the patient's right joint mirrored); :class:`model.ContourNet` predicts a unit vector field
and start/end heatmaps; :func:`walker.walk` traces start -> end; :mod:`infer` maps the trace to patient mm.
"""
