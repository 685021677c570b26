"""CT sacroiliitis grader (SPEC §7.3): pelvis segmentation + per-joint 3-D DenseNet-121, mNY 0-4.

Public API::

    from ml.ctgrade.train import train, evaluate
    summary = train(data_dir, checkpoint_dir, train_config=..., seg_train_config=..., progress=fn, should_stop=fn)
    metrics = evaluate(data_dir, checkpoint_dir)   # {"mny5", "du_2026_three_class", "zhang_2023_three_class",
                                                   #  "binary_definite", "seg_dice", "n_joints"}
    from ml.ctgrade.infer import CtPredictor
    CtPredictor.from_checkpoint(checkpoint_dir).predict_study(folder)

Grouped classes are sums of the 5-class probabilities (SPEC §2.4, :func:`model.grouped_probabilities`).
"""
