"""Synthetic sacroiliac-joint phantoms with ground truth, and simulated readers (SPEC §6).

Plain numpy/scipy/pydicom/highdicom: never imports Django, Celery or the web app.

Public API:

* Generation: :func:`make_mri_phantom`, :func:`make_ct_phantom` (arrays + truth in memory);
  :func:`write_mri_study`, :func:`write_ct_study` (DICOM + ``truth.json`` for one study);
  :func:`generate` (a whole data set + ``manifest.json``; also ``python -m ml.phantoms``).
* Truth: :func:`load_truth` -> :class:`MriTruth` / :class:`CtTruth` (see :mod:`ml.data.truth`).
* Contour-model targets (SPEC §7.1): :func:`vector_field_target`, :func:`heatmap_targets`,
  :func:`slice_targets`.
* Simulated readers (SPEC §6.5): :func:`sample_readers`, :func:`simulate_readings`, :func:`read_study`.
* Realistic readers (issue 18; what the accuracy bench uses): :func:`simulate_realistic_readings`
  (:mod:`ml.phantoms.realistic_readers`: ``ml.consensus.realistic``'s reader model on the phantoms' lesions).

Data-set layout written by :func:`generate`::

    DIR/manifest.json
    DIR/mri-0000/T1/0001.dcm ...  DIR/mri-0000/STIR/0001.dcm ...  DIR/mri-0000/truth.json
    DIR/ct-0000/CT/0001.dcm ...   DIR/ct-0000/SEG/seg.dcm        DIR/ct-0000/truth.json
    DIR/readings/readers.json     DIR/readings/readings.json      (with --readers / --readers-scenario)
"""

from ml.data.truth import CtTruth, MriTruth, SliceJointTruth, load_truth
from ml.phantoms.cli import generate
from ml.phantoms.ct import CtPhantom, make_ct_phantom
from ml.phantoms.mri import MriPhantom, make_mri_phantom
from ml.phantoms.readers import ReaderProfile, read_study, sample_readers, simulate_readings
from ml.phantoms.realistic_readers import simulate_realistic_readings
from ml.phantoms.schema import GENERATOR_VERSION
from ml.phantoms.studies import write_ct_study, write_mri_study
from ml.phantoms.targets import heatmap_targets, slice_targets, vector_field_target

__all__ = [
    "GENERATOR_VERSION",
    "CtPhantom",
    "CtTruth",
    "MriPhantom",
    "MriTruth",
    "ReaderProfile",
    "SliceJointTruth",
    "generate",
    "heatmap_targets",
    "load_truth",
    "make_ct_phantom",
    "make_mri_phantom",
    "read_study",
    "sample_readers",
    "simulate_readings",
    "simulate_realistic_readings",
    "slice_targets",
    "vector_field_target",
    "write_ct_study",
    "write_mri_study",
]
