"""MRI lesion classifier (SPEC §7.2): 14 binary outputs per joint from a T1 + STIR crop (C=2, S, H, W).

Public API (plain Python; what the product's retraining task calls)::

    from ml.lesions.train import train, evaluate
    summary = train(data_dir, checkpoint_dir, target="soft" | "majority" | "readers",
                    train_config=TrainConfig(...), progress=fn, should_stop=fn)   # -> dict
    metrics = evaluate(data_dir, checkpoint_dir)                                  # -> dict
    from ml.lesions.infer import LesionPredictor
    LesionPredictor.from_checkpoint(checkpoint_dir).predict_study(folder, contours=ContourPredictor | None)

Modules: :mod:`series` (DICOM/SEG reading), :mod:`snapshot` (phantom folder / dataset snapshot format),
:mod:`crops` (per-joint crops, npz cache), :mod:`labels` (output order, majority / Dawid-Skene / reader
targets), :mod:`model` (network, confusion layers, losses), :mod:`metrics`, :mod:`train`, :mod:`infer`.
"""
