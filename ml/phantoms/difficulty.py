"""Difficulty presets of the phantom generator: ``easy``, ``realistic`` and ``hard`` (issue 18).

``easy`` is the generator as it was (and keeps its output bit for bit for a seed: no knob of ``easy`` draws an
extra random number). ``realistic`` is the default of the benchmarks: what a reader of clinical SIJ scans meets.
``hard`` pushes each knob further, for stress tests. Each knob and its source [lit]/[design] (SPEC.md §6):

MRI
- ``snr``: Rician noise, sigma = mean / SNR. Easy U(12, 30) (SPEC §6.3); realistic U(4, 10): clinical 1.5 T
  STIR of the pelvis at 3-4 mm is noisy, and BME is the finding readers miss most in paper (a) [design].
- ``partial_volume``: weight of each neighbouring slice mixed into a slice (3-4 mm slices through a curved
  joint) [design].
- ``ghosting``: amplitude of motion ghosts, copies of the image shifted along the phase-encoding direction
  (bowel and breathing motion; SPEC §6.3 "optional motion/ghosting") [design].
- ``bme_contrast``: BME STIR signal as marrow x (1 + c). Easy draws the absolute signal U(0.5, 1.0) as before
  (c of 2.5-9, contrast-to-noise in the tens); realistic c U(0.25, 0.4) for most lesions, with a share
  ``bme_intense_share`` still drawn the easy way (the "intense" lesions of SPARCC) [design].
- ``bme_t1_factor``: T1 darkening of BME; easy 0.6, realistic U(0.75, 0.9) (oedema is subtle on T1) [design].
- ``bme_half_extent_mm`` / ``bme_depth_mm`` / ``erosion_half_extent_mm``: lesion sizes; realistic ones reach
  down to 2 mm along the joint, the size of an early lesion seen on one slice [design].
- ``anywhere``: lesion centres anywhere along the arc, quadrant boundaries included, and lesions that spill into
  the neighbouring quadrant are labelled there too (easy keeps centres at 15-35% / 65-85% of the arc) [design].

CT
- ``grade_prior``: the mNY grade distribution per joint. Easy uniform; realistic 0-4 = 35/15/22/18/10% (a
  referral population: most joints normal or early) [design].
- ``severity_sd``: latent severity = grade + N(0, sd) drives the size and count of erosions and sclerosis, so
  grades 1 and 2 (and 2 and 3) overlap as they do between readers [design].
- ``normal_variant_sclerosis``: probability that a grade 0-1 joint carries non-uniform iliac subchondral
  sclerosis of normal width (2.5 +- 1.6 mm): 83% of asymptomatic people [lit: Vogler, Radiology 1984;151:433].
- ``accessory_joint``: probability of an accessory sacroiliac joint, 17.5% [lit: Demir 2007]; ``osteophyte``:
  probability of an anterior marginal osteophyte (degenerative, not sacroiliitis) [design].
- ``slice_mm`` / ``psf_fwhm_mm`` / ``pixel_mm``: slice thickness, reconstruction kernel sharpness and field of
  view; easy is one scanner (1.0 / 1.0 / 0.7 mm) [design].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

Range = tuple[float, float]


@dataclass(frozen=True)
class Difficulty:
    """The knobs of one preset; see the module docstring for each knob's meaning and source."""

    name: str
    # MRI
    snr: Range = (12.0, 30.0)
    partial_volume: Range = (0.0, 0.0)
    ghosting: Range = (0.0, 0.0)
    bme_contrast: Range | None = None
    bme_intense_share: float = 1.0
    bme_t1_factor: Range = (0.6, 0.6)
    bme_half_extent_mm: Range = (4.0, 8.0)
    bme_depth_mm: Range = (3.0, 20.0)
    erosion_half_extent_mm: Range = (1.5, 3.0)
    anywhere: bool = False
    # CT
    grade_prior: tuple[float, float, float, float, float] | None = None
    severity_sd: float = 0.0
    normal_variant_sclerosis: float = 0.0
    accessory_joint: float = 0.0
    osteophyte: float = 0.0
    slice_mm: tuple[float, ...] = (1.0,)
    psf_fwhm_mm: Range = (1.0, 1.0)
    pixel_mm: Range = (0.7, 0.7)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready knobs (written into the manifest)."""
        return asdict(self)


EASY = Difficulty("easy")
REALISTIC = Difficulty(
    "realistic",
    snr=(4.0, 10.0),
    partial_volume=(0.1, 0.25),
    ghosting=(0.0, 0.06),
    bme_contrast=(0.25, 0.4),
    bme_intense_share=0.2,
    bme_t1_factor=(0.75, 0.9),
    bme_half_extent_mm=(2.0, 8.0),
    bme_depth_mm=(2.0, 20.0),
    erosion_half_extent_mm=(1.0, 3.0),
    anywhere=True,
    grade_prior=(0.35, 0.15, 0.22, 0.18, 0.10),
    severity_sd=0.35,
    normal_variant_sclerosis=0.83,
    accessory_joint=0.175,
    osteophyte=0.2,
    slice_mm=(1.0, 1.5, 2.0),
    psf_fwhm_mm=(0.8, 1.6),
    pixel_mm=(0.6, 0.8),
)
HARD = Difficulty(
    "hard",
    snr=(3.0, 6.0),
    partial_volume=(0.2, 0.35),
    ghosting=(0.03, 0.1),
    bme_contrast=(0.15, 0.3),
    bme_intense_share=0.1,
    bme_t1_factor=(0.85, 0.95),
    bme_half_extent_mm=(1.5, 6.0),
    bme_depth_mm=(1.5, 12.0),
    erosion_half_extent_mm=(0.8, 2.0),
    anywhere=True,
    grade_prior=(0.45, 0.2, 0.2, 0.1, 0.05),
    severity_sd=0.5,
    normal_variant_sclerosis=0.9,
    accessory_joint=0.25,
    osteophyte=0.35,
    slice_mm=(1.5, 2.0, 3.0),
    psf_fwhm_mm=(1.2, 2.0),
    pixel_mm=(0.7, 0.9),
)
PRESETS = {d.name: d for d in (EASY, REALISTIC, HARD)}


def difficulty(value: Difficulty | str) -> Difficulty:
    """The preset named ``value`` (a :class:`Difficulty` passes through); a clear error for an unknown name."""
    if isinstance(value, Difficulty):
        return value
    try:
        return PRESETS[value]
    except KeyError:
        raise ValueError(f"unknown difficulty {value!r}: choose one of {', '.join(PRESETS)}") from None


def draw(rng: Any, bounds: Range) -> float:
    """U(lo, hi) from ``rng``; a fixed knob (lo == hi) draws nothing, so ``easy`` keeps its random stream."""
    lo, hi = bounds
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))
